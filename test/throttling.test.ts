import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { admitAttempt, releaseAttempt } from '../src/accounts/throttling.ts';
import type { ThrottleSettings } from '../src/config.ts';
import { freshDatabasePerTest, testDialect, withOtherConnection } from './helpers/database.ts';

const fresh = freshDatabasePerTest();

const settings: ThrottleSettings = { accountThreshold: 5, ipThreshold: 20, windowSeconds: 900, baseDelaySeconds: 1, maxDelaySeconds: 900 };
const now = 1_800_000_000;
const counters = () => fresh.database.db.selectFrom('sign_in_throttles').select(['key', 'failures']).orderBy('key').execute();

/** Makes the database refuse to give a failure back to this address, as a crash half-way would leave it. */
async function refuseReleaseOf(addressKey: string) {
  if (testDialect === 'sqlite') {
    await sql
      .raw(`create trigger refuse_release before update on sign_in_throttles when new.key = '${addressKey}' and new.failures < old.failures begin select raise(abort, 'refused by the test'); end`)
      .execute(fresh.database.db);
    return;
  }
  await sql.raw(`create function refuse_release() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`).execute(fresh.database.db);
  await sql
    .raw(`create trigger refuse_release before update on sign_in_throttles for each row when (new.key = '${addressKey}' and new.failures < old.failures) execute function refuse_release()`)
    .execute(fresh.database.db);
}

describe('sign-in throttling counters', () => {
  it('gives back both reservations of a correct password, or neither', async () => {
    const attempt = { email: 'person@example.com', ip: '203.0.113.9' };
    for (let i = 0; i < 2; i++) await admitAttempt(fresh.database.db, attempt, settings, now);
    const reservation = await admitAttempt(fresh.database.db, attempt, settings, now);
    if (!reservation.admitted) throw new Error('the third attempt should be admitted');
    expect(await counters()).toEqual([
      { key: 'account:person@example.com', failures: 3 },
      { key: 'ip:203.0.113.9', failures: 3 },
    ]);

    await refuseReleaseOf(reservation.addressKey);
    await expect(releaseAttempt(fresh.database.db, reservation)).rejects.toThrow('refused by the test');
    // The account's counter was not forgotten while the address kept its count.
    expect(await counters()).toEqual([
      { key: 'account:person@example.com', failures: 3 },
      { key: 'ip:203.0.113.9', failures: 3 },
    ]);

    await sql.raw('drop trigger refuse_release' + (testDialect === 'postgres' ? ' on sign_in_throttles' : '')).execute(fresh.database.db);
    await releaseAttempt(fresh.database.db, reservation);
    expect(await counters()).toEqual([{ key: 'ip:203.0.113.9', failures: 2 }]);
  });

  // SQLite has one writer at a time, so only PostgreSQL can deadlock here.
  it.skipIf(testDialect !== 'postgres')('runs an attempt again when PostgreSQL ends a deadlock by aborting it', async () => {
    const attempt = { email: 'locked@example.com', ip: '203.0.113.10' };
    await fresh.database.db
      .insertInto('sign_in_throttles')
      .values(['account:locked@example.com', 'ip:203.0.113.10'].map((key) => ({ key, failures: 1, last_failure_at: now, blocked_until: null })))
      .execute();
    // Another transaction takes the rows in the opposite order, as the housekeeping purge may;
    // its longer deadlock_timeout makes PostgreSQL abort the attempt's transaction, not it.
    await withOtherConnection(fresh.url, async (other) => {
      await other.query('begin');
      await other.query("set local deadlock_timeout = '10s'");
      await other.query("select * from sign_in_throttles where key = 'ip:203.0.113.10' for update");
      const admitted = admitAttempt(fresh.database.db, attempt, settings, now);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await other.query("select * from sign_in_throttles where key = 'account:locked@example.com' for update");
      await other.query('commit');
      expect(await admitted).toMatchObject({ admitted: true });
    });
    expect(await counters()).toEqual([
      { key: 'account:locked@example.com', failures: 2 },
      { key: 'ip:203.0.113.10', failures: 2 },
    ]);
  });
});
