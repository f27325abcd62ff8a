import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { createRequire } from 'node:module';
import type pg from 'pg';
import { CompiledQuery, Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, SqliteDriver, type DatabaseConnection, type Dialect as KyselyDialect, type SqliteDatabase, type SqliteDialectConfig } from 'kysely';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface OpenDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL only: the connection pool, for its gauges. */
  pool?: pg.Pool;
  /** SQLite only: the connection, for online backups. */
  sqlite?: SQLite.Database;
  close(): Promise<void>;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query it runs; preparing is a good part of a short query's cost in
 * SQLite. Latchkey's queries come from a fixed set of builders, so their SQL text repeats and
 * the prepared statements can be kept and reused.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    prepare(query: string) {
      let statement = statements.get(query);
      if (!statement) {
        // Queries with IN lists of varying length are distinct texts: keep the cache bounded.
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear();
        statement = sqlite.prepare(query);
        statements.set(query, statement);
      }
      return statement;
    },
    close: () => sqlite.close(),
  };
}

/**
 * Transactions take SQLite's write lock when they begin. A transaction that begins by reading
 * and then writes is otherwise refused (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out)
 * when another process — the admin script — commits in between; taking the lock first makes
 * the other process wait its turn instead. Within one process Kysely runs one statement at a
 * time on its one connection, so nothing is lost there.
 */
class ImmediateTransactionDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

function sqliteDialect(config: SqliteDialectConfig): KyselyDialect {
  const dialect = new SqliteDialect(config);
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new ImmediateTransactionDriver(config),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  };
}

function openSqlite(file: string): OpenDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const sqlite = new SQLite(file);
  // WAL lets readers run while one writer commits; NORMAL is durable across process crashes in
  // WAL mode and avoids an fsync per commit. Both are per connection, so they are set here.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: sqliteDialect({ database: withStatementCache(sqlite) }) });
  return { db, dialect: 'sqlite', sqlite, close: () => db.destroy() };
}

export interface OpenOptions {
  /** Told about connections that fail while idle in the pool (the pool replaces them). */
  onPoolError?: (err: Error) => void;
}

function openPostgres(url: string, options: OpenOptions): OpenDatabase {
  // Loaded only here: an instance on SQLite never needs the driver, and it would stay resident
  // (about half a megabyte of idle memory).
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg').default;
  // int8 columns hold epoch seconds, well inside Number's exact range.
  const types = {
    getTypeParser: (oid: number, format?: string) =>
      oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'),
  };
  const pool = new pg.Pool({ connectionString: url, max: 10, types, connectionTimeoutMillis: 5000 });
  // An idle connection that dies (database restarted, connection killed) is reported here;
  // without a listener Node would treat it as an unhandled error and exit.
  pool.on('error', (err) => options.onPoolError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', pool, close: () => db.destroy() };
}

/** Opens the database named by DATABASE_URL: a postgres:// URL or a SQLite file path. */
export function openDatabase(url: string, options: OpenOptions = {}): OpenDatabase {
  return isPostgresUrl(url) ? openPostgres(url, options) : openSqlite(url);
}

/** Whether a Kysely instance talks to PostgreSQL (for the few statements that differ). */
export function isPostgres(db: Kysely<Database>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
