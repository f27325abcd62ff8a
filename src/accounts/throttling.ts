import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { ThrottleSettings } from '../config.ts';
import { normalizeEmail } from './emails.ts';
import { storable } from '../db/text.ts';

export const accountKey = (email: string) => `account:${storable(normalizeEmail(email)).slice(0, 254)}`;
export const addressKey = (ip: string) => `ip:${ip}`;

/** The latest moment (epoch seconds) until which any of these keys is blocked, if later than now. */
export async function blockedUntil(db: Kysely<Database>, keys: string[], now: number): Promise<number | null> {
  const row = await db
    .selectFrom('sign_in_throttles')
    .select((eb) => eb.fn.max('blocked_until').as('until'))
    .where('key', 'in', keys)
    .where('blocked_until', '>', now)
    .executeTakeFirst();
  return row?.until == null ? null : Number(row.until);
}

/**
 * Counts one failure under a key (atomically, for every instance at once) and, past the
 * threshold, blocks the key for a delay that doubles with each further failure up to the
 * maximum. Returns the new block's end, or null when the key is not blocked.
 */
export async function recordFailure(
  db: Kysely<Database>,
  key: string,
  threshold: number,
  settings: ThrottleSettings,
  now: number,
): Promise<number | null> {
  const stale = now - settings.windowSeconds;
  const { failures } = await db
    .insertInto('sign_in_throttles')
    .values({ key, failures: 1, last_failure_at: now, blocked_until: null })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        failures: sql<number>`case when sign_in_throttles.last_failure_at < ${stale} then 1 else sign_in_throttles.failures + 1 end`,
        last_failure_at: now,
      }),
    )
    .returning('failures')
    .executeTakeFirstOrThrow();
  if (Number(failures) < threshold) return null;
  const delay = Math.min(settings.maxDelaySeconds, settings.baseDelaySeconds * 2 ** (Number(failures) - threshold));
  const until = now + delay;
  await db.updateTable('sign_in_throttles').set({ blocked_until: until }).where('key', '=', key).execute();
  return until;
}

export async function clearFailures(db: Kysely<Database>, key: string): Promise<void> {
  await db.deleteFrom('sign_in_throttles').where('key', '=', key).execute();
}

/** Forgets counters that have not seen a failure within the window and are not blocking. */
export async function purgeStaleThrottles(db: Kysely<Database>, settings: ThrottleSettings, now: number): Promise<void> {
  await db
    .deleteFrom('sign_in_throttles')
    .where('last_failure_at', '<', now - settings.windowSeconds)
    .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', now)]))
    .execute();
}
