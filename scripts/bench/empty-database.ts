import fs from 'node:fs';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type DatabaseIntrospector } from 'kysely';
import { isPostgresUrl, openDatabase } from '../../src/db/database.ts';

/** Whether a SQLite file or PostgreSQL database holds any table, Kysely's migration record included. */
export async function holdsTables(url: string): Promise<boolean> {
  if (isPostgresUrl(url)) {
    const { db, close } = openDatabase(url);
    try {
      return await anyTable(db);
    } finally {
      await close();
    }
  }
  if (!fs.existsSync(url)) return false;
  // Only read: opening the file as the server does would switch its journal to WAL, a change to
  // a file that may not be ours.
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new SQLite(url, { readonly: true, fileMustExist: true }) }) });
  try {
    return await anyTable(db);
  } finally {
    await db.destroy();
  }
}

async function anyTable(db: { introspection: DatabaseIntrospector }): Promise<boolean> {
  return (await db.introspection.getTables({ withInternalKyselyTables: true })).length > 0;
}
