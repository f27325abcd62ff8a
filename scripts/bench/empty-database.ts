import fs from 'node:fs';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { isPostgresUrl, openDatabase } from '../../src/db/database.ts';

/**
 * Whether a SQLite file or PostgreSQL database holds any table, Kysely's migration record
 * included. A SQLite file is only read: opening it as the server does would switch its journal
 * to WAL, a change to a file that may not be ours.
 */
export async function holdsTables(url: string): Promise<boolean> {
  if (!isPostgresUrl(url) && !fs.existsSync(url)) return false;
  const { db, close } = isPostgresUrl(url)
    ? openDatabase(url)
    : (() => {
        const readOnly = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new SQLite(url, { readonly: true, fileMustExist: true }) }) });
        return { db: readOnly, close: () => readOnly.destroy() };
      })();
  try {
    const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
    return tables.length > 0;
  } finally {
    await close();
  }
}
