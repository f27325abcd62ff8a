import type { Kysely } from 'kysely';
import type { Config } from './config.ts';
import type { Database } from './db/schema.ts';
import { purgeExpiredPayloads } from './oidc/adapter.ts';
import { purgeStaleThrottles } from './accounts/throttling.ts';
import { purgeAudit } from './audit/audit.ts';
import { epochSeconds, type Clock } from './time.ts';

export interface HousekeepingResult {
  expiredPayloads: number;
  auditEvents: number;
}

/**
 * What the database sheds on a schedule: expired sessions, codes and tokens (in small
 * batches), throttling counters nobody has tripped for a while, and audit events past their
 * retention.
 */
export async function runHousekeeping(db: Kysely<Database>, config: Config, clock: Clock): Promise<HousekeepingResult> {
  const expiredPayloads = await purgeExpiredPayloads(db, clock);
  await purgeStaleThrottles(db, config.throttling, epochSeconds(clock));
  await db.deleteFrom('federation_flows').where('expires_at', '<=', epochSeconds(clock)).execute();
  const auditEvents = await purgeAudit(db, config.auditRetentionDays, clock.now());
  return { expiredPayloads, auditEvents };
}
