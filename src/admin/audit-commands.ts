import type { CommandGroup } from './cli.ts';
import { UsageError } from './io.ts';
import { listAudit } from '../audit/audit.ts';
import { normalizeEmail } from '../accounts/emails.ts';
import { findUserByEmail } from '../accounts/users.ts';

/** `--since` takes an ISO date or a duration back from now: 30m, 24h, 7d. */
function parseSince(value: unknown, now: Date): Date | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const duration = /^(\d+)([mhd])$/.exec(text);
  if (duration) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(duration[1]) * unit);
  }
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--since must be an ISO date (2026-01-31, 2026-01-31T12:00:00Z) or a duration (30m, 24h, 7d), got ${JSON.stringify(text)}`);
  }
  return date;
}

export const auditCommands: CommandGroup = {
  list: {
    summary: 'show the security audit trail, newest first',
    usage: '[--user EMAIL] [--since DATE|DURATION] [--limit N] [--json]',
    options: { user: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' } },
    async run({ db, values, print }) {
      const limit = values.limit === undefined ? 100 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit must be a whole number from 1 to 100000');
      const email = typeof values.user === 'string' ? normalizeEmail(values.user) : undefined;
      const user = email ? await findUserByEmail(db, email) : undefined;
      const rows = await listAudit(db, { email, userId: user?.id, since: parseSince(values.since, new Date()), limit });
      const events = rows.map((r) => ({
        at: r.at,
        event: r.event,
        outcome: r.outcome,
        reason: r.reason,
        actor: r.actor,
        userId: r.user_id,
        email: r.email,
        clientId: r.client_id,
        ip: r.ip,
        details: r.details ? (JSON.parse(r.details) as unknown) : null,
      }));
      print(
        events,
        events.length
          ? events.map((e) =>
              [e.at, e.event, e.outcome, e.reason, e.email ?? e.userId, e.clientId && `client=${e.clientId}`, e.ip && `ip=${e.ip}`, e.actor && `by=${e.actor}`]
                .filter(Boolean)
                .join('  '),
            )
          : 'no events',
      );
    },
  },
};
