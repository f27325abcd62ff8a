import { openDatabase } from '../../src/db/database.ts';

/** Whether a SQLite file or PostgreSQL database holds any table, Kysely's migration record included. */
export async function holdsTables(url: string): Promise<boolean> {
  const { db, close } = openDatabase(url);
  try {
    const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
    return tables.length > 0;
  } finally {
    await close();
  }
}
