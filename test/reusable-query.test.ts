import { beforeEach, describe, expect, it } from 'vitest';
import { reusableQuery } from '../src/db/reusable-query.ts';
import { freshDatabasePerTest } from './helpers/database.ts';

describe('a reusable query', () => {
  const fresh = freshDatabasePerTest();
  beforeEach(async () => {
    await fresh.database.db
      .insertInto('roles')
      .values([
        { id: 'r1', name: 'reader', description: 'reads', created_at: '2026-01-01' },
        { id: 'r2', name: 'writer', description: 'writes', created_at: '2026-01-02' },
      ])
      .execute();
  });

  it('runs with the values it is given, in order, each time', async () => {
    const byNameAndDescription = reusableQuery((db) => db.selectFrom('roles').select('id').where('name', '=', '').where('description', '=', ''));
    expect(await byNameAndDescription(fresh.database.db, ['reader', 'reads'])).toEqual([{ id: 'r1' }]);
    expect(await byNameAndDescription(fresh.database.db, ['writer', 'writes'])).toEqual([{ id: 'r2' }]);
    expect(await byNameAndDescription(fresh.database.db, ['writes', 'writer'])).toEqual([]);
  });

  it('refuses the wrong number of values', async () => {
    const byName = reusableQuery((db) => db.selectFrom('roles').select('id').where('name', '=', ''));
    expect(await byName(fresh.database.db, ['reader'])).toEqual([{ id: 'r1' }]);
    await expect(byName(fresh.database.db, ['reader', 'extra'])).rejects.toThrow('query takes 1 values, not 2');
  });
});
