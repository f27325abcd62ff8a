import SQLite from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../src/db/schema.ts';
import { createGroupCommit } from '../src/db/group-commit.ts';
import { freshDatabasePerTest, testDialect } from './helpers/database.ts';

// Marked so that the built-in role the migrations create is told apart.
const role = (id: string, name = id) => ({ id, name, description: 'written here', created_at: '2026-01-01' });

describe('writes committed together', () => {
  const fresh = freshDatabasePerTest();

  const rolesInDatabase = async () => (await fresh.database.db.selectFrom('roles').select('id').where('description', '=', 'written here').orderBy('id').execute()).map((r) => r.id);

  it.skipIf(testDialect !== 'sqlite')('share one commit within a turn of the event loop, and settle only once it is made', async () => {
    const commits = createGroupCommit(fresh.database.db);
    // Another connection to the file sees only what is committed.
    const other = new SQLite(fresh.url, { readonly: true });
    try {
      const committedWhenSettled: string[][] = [];
      const seenBy: Kysely<Database>[] = [];
      const insert = (id: string) =>
        commits
          .write(async (trx) => {
            seenBy.push(trx);
            await trx.insertInto('roles').values(role(id)).execute();
          }, [id])
          .then(() => committedWhenSettled.push(other.prepare("select id from roles where description = 'written here' order by id").all().map((r) => (r as { id: string }).id)));

      await Promise.all([insert('a'), insert('b'), insert('c')]);
      expect(seenBy).toHaveLength(3);
      expect(seenBy.every((db) => db.isTransaction && db === seenBy[0])).toBe(true);
      expect(committedWhenSettled).toEqual([
        ['a', 'b', 'c'],
        ['a', 'b', 'c'],
        ['a', 'b', 'c'],
      ]);

      // Writes of later turns get commits of their own; one alone needs no transaction.
      await insert('d');
      await insert('e');
      expect(seenBy.slice(3).map((db) => db.isTransaction)).toEqual([false, false]);
      expect(committedWhenSettled.at(-1)).toEqual(['a', 'b', 'c', 'd', 'e']);
    } finally {
      other.close();
    }
  });

  it.skipIf(testDialect !== 'postgres')('run as they come on PostgreSQL, which groups concurrent commits itself', async () => {
    const commits = createGroupCommit(fresh.database.db);
    const inTransaction: boolean[] = [];
    const insert = (id: string) =>
      commits.write(async (trx) => {
        inTransaction.push(trx.isTransaction);
        await trx.insertInto('roles').values(role(id)).execute();
      }, [id]);
    await Promise.all([insert('a'), insert('b')]);
    expect(inTransaction).toEqual([false, false]);
    expect(await rolesInDatabase()).toEqual(['a', 'b']);
  });

  it('fail alone: a write that fails does not take the others of its turn with it', async () => {
    await fresh.database.db.insertInto('roles').values(role('existing', 'taken')).execute();
    const commits = createGroupCommit(fresh.database.db);
    const insert = (id: string, name?: string) => commits.write((trx) => trx.insertInto('roles').values(role(id, name)).execute(), [id]);

    const outcomes = await Promise.allSettled([insert('a'), insert('b', 'taken'), insert('c')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/unique|UNIQUE/);
    expect(await rolesInDatabase()).toEqual(['a', 'c', 'existing']);
  });

  it.skipIf(testDialect !== 'sqlite')('let a read wait for the uncommitted writes it names, and only those', async () => {
    const commits = createGroupCommit(fresh.database.db);
    expect(commits.afterWritesTo(['a'])).toBeUndefined();
    const written = commits.write((trx) => trx.insertInto('roles').values(role('a')).execute(), ['a', 'roles']);
    expect(commits.afterWritesTo(['b'])).toBeUndefined();
    const waiting = commits.afterWritesTo(['z', 'a']);
    expect(waiting).toBeInstanceOf(Promise);
    expect(await rolesInDatabase()).toEqual([]);
    await waiting;
    expect(await rolesInDatabase()).toEqual(['a']);
    await written;
    expect(commits.afterWritesTo(['a'])).toBeUndefined();
  });

  it.skipIf(testDialect !== 'sqlite')('let a read that comes while their commit is being made wait for that commit', async () => {
    const commits = createGroupCommit(fresh.database.db);
    // Another connection to the file sees only what is committed.
    const other = new SQLite(fresh.url, { readonly: true });
    try {
      const committed = () => other.prepare("select id from roles where description = 'written here' order by id").all().map((r) => (r as { id: string }).id);
      let waiting: Promise<void> | undefined;
      let unrelated: Promise<void> | undefined;
      let seenOnceSettled: Promise<string[]> | undefined;
      const first = commits.write((trx) => trx.insertInto('roles').values(role('a')).execute(), ['a']);
      const second = commits.write(async (trx) => {
        // The turn's writes are being committed now, the first of them already made.
        waiting = commits.afterWritesTo(['a']);
        unrelated = commits.afterWritesTo(['c']);
        // Read as soon as the wait ends: a wait that ended before the commit would see nothing.
        seenOnceSettled = waiting?.then(committed);
        await trx.insertInto('roles').values(role('b')).execute();
      }, ['b']);
      await Promise.all([first, second]);
      expect(unrelated).toBeUndefined();
      expect(waiting).toBeInstanceOf(Promise);
      expect(await seenOnceSettled).toEqual(['a', 'b']);
    } finally {
      other.close();
    }
  });

  it.skipIf(testDialect !== 'sqlite')('all fail at once, without each waiting again, when their commit cannot begin', async () => {
    await sql`pragma busy_timeout = 0`.execute(fresh.database.db);
    // Another process holds the write lock.
    const other = new SQLite(fresh.url);
    other.prepare('begin immediate').run();
    try {
      const commits = createGroupCommit(fresh.database.db);
      let attempts = 0;
      const insert = (id: string) =>
        commits.write((trx) => {
          attempts++;
          return trx.insertInto('roles').values(role(id)).execute();
        }, [id]);
      const outcomes = await Promise.allSettled([insert('a'), insert('b'), insert('c')]);
      expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: string }).code : o.status))).toEqual(['SQLITE_BUSY', 'SQLITE_BUSY', 'SQLITE_BUSY']);
      expect(attempts).toBe(0);
    } finally {
      other.prepare('rollback').run();
      other.close();
    }
    expect(await rolesInDatabase()).toEqual([]);
  });

  it('hand each write its own result', async () => {
    await fresh.database.db.insertInto('roles').values([role('x'), role('y')]).execute();
    const commits = createGroupCommit(fresh.database.db);
    const remove = (id: string) => commits.write(async (trx) => Number((await trx.deleteFrom('roles').where('id', '=', id).executeTakeFirst()).numDeletedRows), [id]);
    expect(await Promise.all([remove('x'), remove('missing'), remove('y')])).toEqual([1, 0, 1]);
  });
});
