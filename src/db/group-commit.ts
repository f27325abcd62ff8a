import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { isPostgres } from './database.ts';

/**
 * One statement, made with the handle it is given and nothing else: inside a shared commit
 * that handle is the transaction, and the database's own would wait for it forever. It may run
 * twice (once in a shared commit that is rolled back, then alone), so it must have no other
 * effect.
 */
type Write<T> = (trx: Kysely<Database>) => Promise<T>;

interface Pending {
  write: Write<unknown>;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

interface Batch {
  writes: Pending[];
  /** What the writes change, as their callers name it. */
  keys: Set<string>;
  /** Settles, never rejecting, once every write of the batch is settled. */
  settled: Promise<void>;
  settle(): void;
}

export interface GroupCommit {
  /**
   * Runs a write and settles once it is committed. Writes made in the same turn of the event
   * loop may share one commit with each other. `keys` name what it changes, for `afterWritesTo`.
   */
  write<T>(write: Write<T>, keys: readonly string[]): Promise<T>;
  /**
   * Settles once every write made so far that names one of `keys` is committed, or is
   * undefined when none is waiting. A read that must see the writes made before it (a code
   * consumed by one request, read by another arriving in the same turn) waits for it.
   */
  afterWritesTo(keys: readonly string[]): Promise<void> | undefined;
}

function newBatch(): Batch {
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  return { writes: [], keys: new Set(), settled, settle };
}

/**
 * Commits the writes of one turn of the event loop together, on SQLite. A write committed on
 * its own costs SQLite most of its time (its pages appended to the write-ahead log and the
 * file locks, about 50–70 µs against 3.5 µs inside a transaction), and oidc-provider awaits each
 * of its writes alone: a sign-in makes about a dozen, a refresh three, and under load some ten
 * arrive in each turn. No write settles before the commit that holds it, so nothing is
 * acknowledged that a crash of the process could still lose. PostgreSQL commits over a pool of connections in
 * parallel and groups concurrent commits itself, so there each write runs as it comes.
 */
export function createGroupCommit(db: Kysely<Database>): GroupCommit {
  if (isPostgres(db)) return { write: (write) => write(db), afterWritesTo: () => undefined };

  // Taking writes until the end of this turn; then being committed, until every write of it
  // is settled. One turn's commit ends before the next turn's begins: SQLite's statements run
  // synchronously, so a commit takes no turn of its own.
  let open: Batch | undefined;
  let committing: Batch | undefined;

  const runAlone = async (pending: Pending) => {
    try {
      pending.resolve(await pending.write(db));
    } catch (err) {
      pending.reject(err);
    }
  };

  const commit = async (batch: Batch) => {
    const { writes } = batch;
    if (writes.length === 1) return runAlone(writes[0]!);
    let failedWrite = false;
    let results: unknown[];
    try {
      results = await db.transaction().execute(async (trx) => {
        const done: unknown[] = [];
        for (const pending of writes) {
          try {
            done.push(await pending.write(trx));
          } catch (err) {
            failedWrite = true;
            throw err;
          }
        }
        return done;
      });
    } catch (err) {
      // One write's failure must not fail the others that happened to share its turn: the
      // transaction is rolled back whole, and each write is tried again with its own commit.
      // When the transaction itself could not begin or commit (the database locked past its
      // busy timeout, the disk full), each alone would most likely fail the same way, after
      // as long a wait.
      if (failedWrite) {
        for (const pending of writes) await runAlone(pending);
      } else {
        for (const pending of writes) pending.reject(err);
      }
      return;
    }
    writes.forEach((pending, i) => pending.resolve(results[i]));
  };

  const commitOpenBatch = async () => {
    const batch = open!;
    open = undefined;
    committing = batch;
    try {
      await commit(batch);
    } finally {
      committing = undefined;
      batch.settle();
    }
  };

  return {
    write<T>(write: Write<T>, keys: readonly string[]): Promise<T> {
      if (!open) {
        open = newBatch();
        // setImmediate runs after the I/O callbacks of this turn, so the requests they carry
        // add their writes to the same commit.
        setImmediate(() => void commitOpenBatch());
      }
      const batch = open;
      for (const key of keys) batch.keys.add(key);
      return new Promise<T>((resolve, reject) => {
        batch.writes.push({ write, resolve: resolve as (value: unknown) => void, reject });
      });
    },

    afterWritesTo(keys: readonly string[]): Promise<void> | undefined {
      const touches = (batch: Batch | undefined) => batch !== undefined && keys.some((key) => batch.keys.has(key));
      // The open batch commits after the one committing, so waiting for it is enough.
      if (touches(open)) return open!.settled;
      if (touches(committing)) return committing!.settled;
      return undefined;
    },
  };
}
