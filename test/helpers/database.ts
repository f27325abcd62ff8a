import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';

/** Which database this run of the suite uses; vitest.config.ts runs it once per dialect. */
export const testDialect: 'sqlite' | 'postgres' = process.env.LATCHKEY_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

export const postgresAdminUrl = process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

// PostgreSQL runs share no SQLite directory to keep a development secret in, so they set one.
const TEST_SECRET = 'a key-encryption secret used only by the test suite';

/** The environment a server or the admin script gets for a test database. */
export function testEnv(databaseUrl: string): Record<string, string> {
  return testDialect === 'postgres' ? { DATABASE_URL: databaseUrl, LATCHKEY_SECRET: TEST_SECRET } : { DATABASE_URL: databaseUrl };
}

export function tempDatabaseFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-test-'));
  return path.join(dir, 'latchkey.sqlite');
}

function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withOtherConnection(postgresAdminUrl, work);
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the run's dialect: a SQLite file, or a PostgreSQL database it creates. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (testDialect === 'sqlite') {
    const file = tempDatabaseFile();
    return { url: file, drop: async () => fs.rmSync(path.dirname(file), { recursive: true, force: true }) };
  }
  const name = `latchkey_test_${crypto.randomBytes(6).toString('hex')}`;
  await withAdminClient((c) => c.query(`create database ${name}`));
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: async () => {
      await withAdminClient((c) => c.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** Runs SQL as the PostgreSQL superuser (to cut a test database off, or let it back in). */
export function asPostgresAdmin(query: string): Promise<unknown> {
  return withAdminClient((c) => c.query(query));
}

/**
 * A migrated database of the run's dialect for each test of the calling suite, closed and
 * dropped after it.
 */
export function freshDatabasePerTest(): { readonly database: OpenDatabase; readonly url: string } {
  let current: { database: OpenDatabase; test: TestDatabase } | undefined;
  beforeEach(async () => {
    const test = await createTestDatabase();
    const database = openDatabase(test.url);
    await migrateToLatest(database.db);
    current = { database, test };
  });
  afterEach(async () => {
    await current?.database.close();
    await current?.test.drop();
    current = undefined;
  });
  const now = () => {
    if (!current) throw new Error('the database exists only while a test runs');
    return current;
  };
  return {
    get database() {
      return now().database;
    },
    get url() {
      return now().test.url;
    },
  };
}

/**
 * Runs `use` with a second PostgreSQL connection of its own (another instance, another tab's
 * transaction), closed afterwards.
 */
export async function withOtherConnection<T>(url: string, use: (other: pg.Client) => Promise<T>): Promise<T> {
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    return await use(other);
  } finally {
    await other.end();
  }
}
