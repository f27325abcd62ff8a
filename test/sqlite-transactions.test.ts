import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../src/db/database.ts';
import { tempDatabaseFile, testDialect } from './helpers/database.ts';

// Another process on the same file, as the admin script is: its own connection.
function otherProcess(file: string): SQLite.Database {
  const other = new SQLite(file);
  other.pragma('busy_timeout = 0');
  return other;
}

describe.skipIf(testDialect !== 'sqlite')('SQLite transactions', () => {
  let file: string;
  let database: OpenDatabase;
  let other: SQLite.Database;

  afterEach(async () => {
    other?.close();
    await database?.close();
    if (file) fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('read, then write, without being refused when another process commits in between', async () => {
    file = tempDatabaseFile();
    database = openDatabase(file);
    await sql`create table counters (name text primary key, value integer not null)`.execute(database.db);
    await sql`insert into counters values ('ours', 0), ('theirs', 0)`.execute(database.db);
    other = otherProcess(file);

    let refusedMeanwhile: unknown;
    await database.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ value: number }>`select value from counters where name = 'ours'`.execute(trx);
      // The other process cannot commit now: it would wait for this transaction, as the admin
      // script does with its busy timeout.
      try {
        other.prepare(`update counters set value = value + 1 where name = 'theirs'`).run();
      } catch (err) {
        refusedMeanwhile = err;
      }
      await sql`update counters set value = ${rows[0]!.value + 1} where name = 'ours'`.execute(trx);
    });
    expect((refusedMeanwhile as { code?: string })?.code).toBe('SQLITE_BUSY');

    other.prepare(`update counters set value = value + 1 where name = 'theirs'`).run();
    expect(other.prepare('select name, value from counters order by name').all()).toEqual([
      { name: 'ours', value: 1 },
      { name: 'theirs', value: 1 },
    ]);
  });
});
