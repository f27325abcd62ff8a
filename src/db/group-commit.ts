import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { isPostgres } from './database.ts';

type Write<T> = (db: Kysely<Database>) => Promise<T>;

interface Pending {
  write: Write<unknown>;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

export interface GroupCommit {
  /**
   * Runs a write and settles once it is committed. Writes made in the same turn of the event
   * loop may share one commit with each other.
   */
  write<T>(write: Write<T>): Promise<T>;
}

/**
 * Commits the writes of one turn of the event loop together, on SQLite. A write committed on
 * its own costs SQLite most of its time (its pages appended to the write-ahead log and the
 * file locks, about 50–70 µs against 3.5 µs inside a transaction), and oidc-provider awaits each
 * of its writes alone: a sign-in makes about a dozen, a refresh three, and under load some ten
 * arrive in each turn. No write settles before the commit that holds it, so nothing is
 * acknowledged that could still be lost. PostgreSQL commits over a pool of connections in
 * parallel and groups concurrent commits itself, so there each write runs as it comes.
 */
export function createGroupCommit(db: Kysely<Database>): GroupCommit {
  if (isPostgres(db)) return { write: (write) => write(db) };

  let queue: Pending[] = [];

  const runAlone = async (pending: Pending) => {
    try {
      pending.resolve(await pending.write(db));
    } catch (err) {
      pending.reject(err);
    }
  };

  const commitQueue = async () => {
    const batch = queue;
    queue = [];
    if (batch.length === 1) return runAlone(batch[0]!);
    let results: unknown[];
    try {
      results = await db.transaction().execute(async (trx) => {
        const done: unknown[] = [];
        for (const pending of batch) done.push(await pending.write(trx));
        return done;
      });
    } catch {
      // One write's failure must not fail the others that happened to share its turn: the
      // transaction is rolled back whole, and each write is tried again with its own commit.
      for (const pending of batch) await runAlone(pending);
      return;
    }
    batch.forEach((pending, i) => pending.resolve(results[i]));
  };

  return {
    write<T>(write: Write<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        // setImmediate runs after the I/O callbacks of this turn, so the requests they carry
        // add their writes to the same commit.
        if (queue.length === 0) setImmediate(() => void commitQueue());
        queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      });
    },
  };
}
