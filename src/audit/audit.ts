import crypto from 'node:crypto';
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditEventTable, Database } from '../db/schema.ts';
import { storable } from '../db/text.ts';
import { reusableQuery } from '../db/reusable-query.ts';

export interface AuditEvent {
  event: string;
  outcome: 'success' | 'failure';
  reason?: string;
  actor?: string;
  userId?: string;
  email?: string;
  clientId?: string;
  ip?: string;
  /** Identifiers and names only; never a secret, token, code or password. */
  details?: Record<string, unknown>;
}

export type AuditRow = Selectable<AuditEventTable>;

// Values from requests are attacker-chosen: bounded and without NULs before they are stored.
const text = (value: string | undefined) => (value === undefined ? null : storable(value).slice(0, 500));

// Every sign-in and consent records events, so the insert is compiled once
// (src/db/reusable-query.ts); its values go in the order of AUDIT_COLUMNS.
const AUDIT_COLUMNS = ['id', 'at', 'event', 'outcome', 'reason', 'actor', 'user_id', 'email', 'client_id', 'ip', 'details'] as const;
const insertAuditEvent = reusableQuery((db) =>
  db.insertInto('audit_events').values(Object.fromEntries(AUDIT_COLUMNS.map((column) => [column, ''])) as Insertable<AuditEventTable>),
);

export async function recordAudit(db: Kysely<Database>, e: AuditEvent, at: Date = new Date()): Promise<void> {
  const row: Record<(typeof AUDIT_COLUMNS)[number], string | null> = {
    id: crypto.randomUUID(),
    at: at.toISOString(),
    event: e.event,
    outcome: e.outcome,
    reason: text(e.reason),
    actor: text(e.actor),
    user_id: text(e.userId),
    email: text(e.email),
    client_id: text(e.clientId),
    ip: text(e.ip),
    // JSON escapes a NUL as \u0000, which PostgreSQL accepts in text.
    details: e.details ? JSON.stringify(e.details) : null,
  };
  await insertAuditEvent(db, AUDIT_COLUMNS.map((column) => row[column]));
}

export interface AuditQuery {
  email?: string;
  userId?: string;
  since?: Date;
  limit?: number;
}

export async function listAudit(db: Kysely<Database>, query: AuditQuery): Promise<AuditRow[]> {
  let q = db.selectFrom('audit_events').selectAll();
  if (query.since) q = q.where('at', '>=', query.since.toISOString());
  if (query.email || query.userId) {
    q = q.where((eb) =>
      eb.or([
        ...(query.email ? [eb('email', '=', query.email)] : []),
        ...(query.userId ? [eb('user_id', '=', query.userId)] : []),
      ]),
    );
  }
  return q.orderBy('at', 'desc').orderBy('id').limit(query.limit ?? 1000).execute();
}

/** Deletes events older than the retention period. */
export async function purgeAudit(db: Kysely<Database>, retentionDays: number, now: Date = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - retentionDays * 86400_000).toISOString();
  const result = await db.deleteFrom('audit_events').where('at', '<', cutoff).executeTakeFirst();
  return Number(result.numDeletedRows);
}
