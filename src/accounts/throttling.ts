import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, SignInThrottleTable } from '../db/schema.ts';
import { reusableQuery } from '../db/reusable-query.ts';
import type { ThrottleSettings } from '../config.ts';
import { normalizeEmail } from './emails.ts';
import { storable } from '../db/text.ts';
import { isPostgres } from '../db/database.ts';

const accountKey = (email: string) => `account:${storable(normalizeEmail(email)).slice(0, 254)}`;
const addressKey = (ip: string) => `ip:${ip}`;

/** What an admitted attempt counted up front: its keys, and the blocks (epoch seconds) its count started. */
export interface Reservation {
  accountKey: string;
  addressKey: string;
  accountBlock: number | null;
  addressBlock: number | null;
}

export type Admission = { admitted: false; blockedUntil: number } | ({ admitted: true } & Reservation);

interface Counter {
  key: string;
  threshold: number;
}

/**
 * One more failure under a key whose row this transaction holds: past the threshold the key is
 * blocked for a delay that doubles with each further failure, up to the maximum. `blocked_until`
 * is the block's end (epoch seconds), or null when the count starts none.
 */
function counted(counter: Counter, row: Selectable<SignInThrottleTable> | undefined, settings: ThrottleSettings, now: number) {
  const failures = !row || Number(row.last_failure_at) < now - settings.windowSeconds ? 1 : Number(row.failures) + 1;
  const blockedUntil =
    failures < counter.threshold ? null : now + Math.min(settings.maxDelaySeconds, settings.baseDelaySeconds * 2 ** (failures - counter.threshold));
  return { key: counter.key, failures, last_failure_at: now, blocked_until: blockedUntil };
}

// Every attempt runs these, so they are compiled once (src/db/reusable-query.ts); an attempt
// always has two keys, its account's and its address's.

// PostgreSQL only: a row to lock for a key not seen before. (SQLite transactions hold the write
// lock from their start: src/db/database.ts.)
const insertMissingCounters = reusableQuery((db) =>
  db
    .insertInto('sign_in_throttles')
    .values(['', ''].map((key) => ({ key, failures: sql.lit(0), last_failure_at: 0, blocked_until: sql.lit(null) })))
    .onConflict((oc) => oc.column('key').doNothing()),
);

const selectCounters = reusableQuery((db) =>
  db
    .selectFrom('sign_in_throttles')
    .selectAll()
    .where('key', 'in', ['', ''])
    .orderBy('key')
    .$if(isPostgres(db), (qb) => qb.forUpdate()),
);

// An upsert, not an update: the housekeeping purge may have deleted a stale row since it was read.
const writeCounters = reusableQuery((db) =>
  db
    .insertInto('sign_in_throttles')
    .values(['', ''].map((key) => ({ key, failures: 0, last_failure_at: 0, blocked_until: null })))
    .onConflict((oc) =>
      oc.column('key').doUpdateSet((eb) => ({
        failures: eb.ref('excluded.failures'),
        last_failure_at: eb.ref('excluded.last_failure_at'),
        blocked_until: eb.ref('excluded.blocked_until'),
      })),
    ),
);

/**
 * Refuses a sign-in attempt while its account or address is blocked (without counting it), and
 * otherwise counts it as a failure before its password is checked. Checking and counting are one
 * transaction: were they apart, guesses sent in parallel would all pass the check before any was
 * counted, and each would get an argon2 verification however low the threshold.
 */
export async function admitAttempt(
  db: Kysely<Database>,
  attempt: { email: string; ip: string },
  settings: ThrottleSettings,
  now: number,
): Promise<Admission> {
  const account: Counter = { key: accountKey(attempt.email), threshold: settings.accountThreshold };
  const address: Counter = { key: addressKey(attempt.ip), threshold: settings.ipThreshold };
  // Every attempt takes its rows in the same order, so attempts sharing keys queue rather than deadlock.
  const keys = [account.key, address.key].sort();
  return againAfterDeadlock(() => admitOnce(db, keys, account, address, settings, now));
}

const POSTGRES_DEADLOCK = '40P01';
const DEADLOCK_RETRIES = 3;

/**
 * The housekeeping purge deletes rows in whatever order it finds them, so PostgreSQL may, rarely,
 * end a deadlock with it by aborting a counter transaction; that transaction is simply run again.
 */
async function againAfterDeadlock<T>(transaction: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await transaction();
    } catch (err) {
      if (tries >= DEADLOCK_RETRIES || (err as { code?: string }).code !== POSTGRES_DEADLOCK) throw err;
    }
  }
}

function admitOnce(db: Kysely<Database>, keys: string[], account: Counter, address: Counter, settings: ThrottleSettings, now: number): Promise<Admission> {
  return db.transaction().execute(async (trx): Promise<Admission> => {
    if (isPostgres(trx)) await insertMissingCounters(trx, [keys[0], now, keys[1], now]);
    const rows = await selectCounters(trx, keys);
    const blockedUntil = Math.max(0, ...rows.map((row) => Number(row.blocked_until ?? 0)));
    if (blockedUntil > now) {
      // Refused attempts leave no rows behind, or a spray from a blocked address would fill the
      // table: the rows inserted above to be locked go again.
      if (isPostgres(trx)) await trx.deleteFrom('sign_in_throttles').where('key', 'in', keys).where('failures', '=', 0).execute();
      return { admitted: false, blockedUntil };
    }
    const rowOf = (counter: Counter) => rows.find((row) => row.key === counter.key);
    const [accountCount, addressCount] = [counted(account, rowOf(account), settings, now), counted(address, rowOf(address), settings, now)];
    await writeCounters(trx, [accountCount, addressCount].flatMap((c) => [c.key, c.failures, c.last_failure_at, c.blocked_until]));
    return { admitted: true, accountKey: account.key, addressKey: address.key, accountBlock: accountCount.blocked_until, addressBlock: addressCount.blocked_until };
  });
}

/**
 * A correct password gives back what its attempt reserved: the account's counter starts afresh,
 * and the address counts one failure fewer, so people signing in from one shared address (an
 * office, a carrier's NAT) do not throttle each other.
 */
export async function releaseAttempt(db: Kysely<Database>, reservation: Reservation): Promise<void> {
  // One transaction, so a failure half-way cannot forget the account's failures while the
  // address keeps its count, or the reverse. The account's key sorts before the address's
  // ("account:" < "ip:"), the order admitAttempt locks them in.
  await againAfterDeadlock(() =>
    db.transaction().execute(async (trx) => {
      await forgetCounter(trx, [reservation.accountKey]);
      await giveBackFailure(trx, [reservation.addressBlock, reservation.addressKey]);
      // Nor does every sign-in from a new address leave a row behind for the whole window.
      await forgetSpentCounter(trx, [reservation.addressKey]);
    }),
  );
}

const forgetCounter = reusableQuery((db) => db.deleteFrom('sign_in_throttles').where('key', '=', ''));
const forgetSpentCounter = reusableQuery((db) => db.deleteFrom('sign_in_throttles').where('key', '=', '').where('failures', '=', sql.lit(0)));

const giveBackFailure = reusableQuery((db) =>
  db
    .updateTable('sign_in_throttles')
    .set((eb) => ({
      failures: eb('failures', '-', sql.lit(1)),
      // Only a block this attempt started is lifted (with none, "= null" matches nothing). No
      // later one can have replaced it: every attempt during a block is refused uncounted.
      blocked_until: sql<number | null>`case when blocked_until = ${0} then null else blocked_until end`,
    }))
    .where('key', '=', '')
    .where('failures', '>', sql.lit(0)),
);

/** Forgets counters that have not seen a failure within the window and are not blocking. */
export async function purgeStaleThrottles(db: Kysely<Database>, settings: ThrottleSettings, now: number): Promise<void> {
  await db
    .deleteFrom('sign_in_throttles')
    .where('last_failure_at', '<', now - settings.windowSeconds)
    .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', now)]))
    .execute();
}
