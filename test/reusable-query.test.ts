import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { reusableQuery } from '../src/db/reusable-query.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

describe('a reusable query', () => {
  let testDatabase: TestDatabase;
  let database: OpenDatabase;
  beforeEach(async () => {
    testDatabase = await createTestDatabase();
    database = openDatabase(testDatabase.url);
    await migrateToLatest(database.db);
    await database.db
      .insertInto('roles')
      .values([
        { id: 'r1', name: 'reader', description: 'reads', created_at: '2026-01-01' },
        { id: 'r2', name: 'writer', description: 'writes', created_at: '2026-01-02' },
      ])
      .execute();
  });
  afterEach(async () => {
    await database.close();
    await testDatabase.drop();
  });

  it('runs with the values it is given, in order, each time', async () => {
    const byNameAndDescription = reusableQuery((db) => db.selectFrom('roles').select('id').where('name', '=', '').where('description', '=', ''));
    expect(await byNameAndDescription(database.db, ['reader', 'reads'])).toEqual([{ id: 'r1' }]);
    expect(await byNameAndDescription(database.db, ['writer', 'writes'])).toEqual([{ id: 'r2' }]);
    expect(await byNameAndDescription(database.db, ['writes', 'writer'])).toEqual([]);
  });

  it('refuses the wrong number of values', async () => {
    const byName = reusableQuery((db) => db.selectFrom('roles').select('id').where('name', '=', ''));
    expect(await byName(database.db, ['reader'])).toEqual([{ id: 'r1' }]);
    await expect(byName(database.db, ['reader', 'extra'])).rejects.toThrow('query takes 1 values, not 2');
  });
});
