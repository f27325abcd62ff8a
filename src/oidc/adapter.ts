import type { Kysely } from 'kysely';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import { findClientRow } from '../clients/clients.ts';
import { toProviderMetadata } from '../clients/provider-metadata.ts';
import { epochSeconds, type Clock } from '../time.ts';
import type { SecretBox } from '../keys/secret-box.ts';
import { canMatchStored } from '../db/text.ts';
import { reusableQuery } from '../db/reusable-query.ts';
import { createGroupCommit } from '../db/group-commit.ts';
import type { RegistryCache } from '../registry/registry-cache.ts';

type Row = { payload: string; expires_at: number | null; consumed_at: number | null };

export interface AdapterOptions {
  /** Opens sealed client secrets (client_secret_jwt). */
  secretBox: SecretBox;
  /**
   * Seconds after its first use during which a refresh token still counts as unused. Two
   * refreshes racing from one app would otherwise look like theft and revoke the grant.
   */
  refreshTokenReuseGrace: number;
  /** Client rows are read through it: every token request needs its client. */
  registry: RegistryCache;
  /** Told of a grant revoked because a code or refresh token of it was redeemed twice at once. */
  onGrantRevoked?(grantId: string): void;
}

type LookupColumn = 'id' | 'uid' | 'user_code';

// The look-ups of every request: by model and one of these columns (values: model, key).
const findPayloadBy = (column: LookupColumn) =>
  reusableQuery((db) => db.selectFrom('oidc_payloads').select(['payload', 'expires_at', 'consumed_at']).where('model', '=', '').where(column, '=', ''));
const findPayload = { id: findPayloadBy('id'), uid: findPayloadBy('uid'), user_code: findPayloadBy('user_code') };

// The writes a sign-in makes a dozen of and every refresh several, compiled once like the
// look-ups. What an upsert stores, in the order its values are passed.
const storedColumns = { payload: '', grant_id: '', account_id: '', uid: '', user_code: '', expires_at: 0 };
// Values: model, id, consumed_at, then the stored columns twice (inserted, and set on
// conflict, which leaves consumed_at as it was).
const upsertPayload = reusableQuery((db) =>
  db
    .insertInto('oidc_payloads')
    .values({ model: '', id: '', consumed_at: null, ...storedColumns })
    .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(storedColumns)),
);
// Values: now, model, id. The first use is what counts: a repeat within the grace window
// must not extend it.
const consumePayload = reusableQuery((db) =>
  db
    .updateTable('oidc_payloads')
    .set((eb) => ({ consumed_at: eb.fn.coalesce('consumed_at', eb.val(0)) }))
    .where('model', '=', '')
    .where('id', '=', ''),
);
// Records redeemed once, by consuming them, and what oidc-provider says when one is redeemed
// again. A refresh token may be used again within its reuse grace, on purpose.
const REDEEMED_ONCE: Record<string, string> = {
  AuthorizationCode: 'authorization code already consumed',
  DeviceCode: 'device code already consumed',
  BackchannelAuthenticationRequest: 'backchannel authentication request already consumed',
  RefreshToken: 'refresh token already used',
};
// Values: now, model, id. Changes nothing, and returns nothing, once the record is consumed.
const consumeUnconsumed = reusableQuery((db) =>
  db
    .updateTable('oidc_payloads')
    .set({ consumed_at: 0 })
    .where('model', '=', '')
    .where('id', '=', '')
    .where('consumed_at', 'is', null)
    .returning('grant_id'),
);
// Values: now, model, id, and the earliest first use still within the grace. Keeps the first use.
const consumeWithinGrace = reusableQuery((db) =>
  db
    .updateTable('oidc_payloads')
    .set((eb) => ({ consumed_at: eb.fn.coalesce('consumed_at', eb.val(0)) }))
    .where('model', '=', '')
    .where('id', '=', '')
    .where((eb) => eb.or([eb('consumed_at', 'is', null), eb('consumed_at', '>', 0)]))
    .returning('grant_id'),
);
const grantOfPayload = reusableQuery((db) => db.selectFrom('oidc_payloads').select('grant_id').where('model', '=', '').where('id', '=', ''));
// What oidc-provider revokes when it finds a code used twice: the grant's tokens and codes of
// every kind, and the grant. One statement, so that no failure can leave the grant without the
// tokens or the tokens without the grant.
const GRANT_MODELS = ['AccessToken', ...Object.keys(REDEEMED_ONCE)];
const deleteGrant = (db: Kysely<Database>, grantId: string) =>
  db
    .deleteFrom('oidc_payloads')
    .where((eb) => eb.or([eb.and([eb('model', 'in', GRANT_MODELS), eb('grant_id', '=', grantId)]), eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)])]))
    .returning('model')
    .execute();
const deletePayloadBy = (column: 'id' | 'grant_id') => reusableQuery((db) => db.deleteFrom('oidc_payloads').where('model', '=', '').where(column, '=', ''));
const deletePayload = { id: deletePayloadBy('id'), grant_id: deletePayloadBy('grant_id') };

/** Ties the adapter to a clock and a database. Exported so tests can drive expiry directly. */
export function createAdapterFactory(db: Kysely<Database>, clock: Clock, options: AdapterOptions) {
  const commits = createGroupCommit(db);
  // What a write changes, so that a look-up waits for the writes it must see (group-commit.ts):
  // the record, and its model (whose look-ups by uid or user code any write may change). A
  // revocation by grant may delete any record of its model.
  const recordKey = (model: string, id: string) => `${model} ${id}`;
  const modelKey = (model: string) => model;
  const sweepKey = (model: string) => `${model} *`;
  const grace = options.refreshTokenReuseGrace;
  const toPayload = (model: string, row: Row | undefined): AdapterPayload | undefined => {
    if (!row) return undefined;
    const now = epochSeconds(clock);
    // Rows outlive their expiry until the purge runs; they must not be served meanwhile.
    if (row.expires_at !== null && row.expires_at <= now) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    // Without a grace there is none at all: a first use stamped by an instance whose clock is
    // ahead of this one's must not count as within it.
    const inGrace = model === 'RefreshToken' && grace > 0 && row.consumed_at !== null && now - row.consumed_at < grace;
    if (row.consumed_at !== null && !inGrace) payload.consumed = row.consumed_at;
    return payload;
  };

  async function revokeGrant(grantId: string): Promise<void> {
    const keys = [...GRANT_MODELS.flatMap((model) => [sweepKey(model), modelKey(model)]), recordKey('Grant', grantId), modelKey('Grant')];
    const deleted = await commits.write((trx) => deleteGrant(trx, grantId), keys);
    // Reported once: a third request, or the library, may have revoked it already.
    if (deleted.some((row) => row.model === 'Grant')) options.onGrantRevoked?.(grantId);
  }

  /**
   * oidc-provider's storage: one table of JSON payloads keyed by (model, id), with the columns its
   * look-ups need. Clients are the exception: they are read from the clients table, read-only.
   */
  return class KyselyAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with the admin script');
      const values = [
        JSON.stringify(payload),
        payload.grantId ?? null,
        payload.accountId ?? null,
        payload.uid ?? null,
        payload.userCode ?? null,
        expiresIn ? epochSeconds(clock) + expiresIn : null,
      ];
      await commits.write((trx) => upsertPayload(trx, [this.model, id, null, ...values, ...values]), [recordKey(this.model, id), modelKey(this.model)]);
    }

    private async findBy(column: LookupColumn, value: string): Promise<AdapterPayload | undefined> {
      if (!canMatchStored(value)) return undefined;
      // A code or token consumed by a request that arrived just before this one may not be
      // committed yet; reading it unconsumed would let a replay through undetected.
      const pending = commits.afterWritesTo(column === 'id' ? [recordKey(this.model, value), sweepKey(this.model)] : [modelKey(this.model)]);
      if (pending) await pending;
      const [row] = await findPayload[column](db, [this.model, value]);
      return toPayload(this.model, row);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') {
        return options.registry.get(['client', id], async () => {
          const row = await findClientRow(db, id);
          return row ? (toProviderMetadata(row, options.secretBox) as AdapterPayload) : undefined;
        });
      }
      return this.findBy('id', id);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findBy('uid', uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findBy('user_code', userCode);
    }

    async consume(id: string): Promise<void> {
      const now = epochSeconds(clock);
      const keys = [recordKey(this.model, id), modelKey(this.model)];
      const label = REDEEMED_ONCE[this.model];
      if (label === undefined) {
        await commits.write((trx) => consumePayload(trx, [now, this.model, id]), keys);
        return;
      }
      // oidc-provider has checked that the record it read was not consumed, but another request
      // may have consumed it since: on PostgreSQL, one served by another instance. So the
      // write is the check that counts, and the request that loses is refused as a replay
      // (RFC 6749 §4.1.2, RFC 9700 §4.14.2), its grant revoked as oidc-provider revokes it for
      // one it sees. A refresh token read within the grace was read so a moment ago, and the
      // second may have turned since: one more second keeps the write from refusing what the
      // read allowed.
      const consumed = await commits.write(
        (trx) =>
          this.model === 'RefreshToken' && grace > 0
            ? consumeWithinGrace(trx, [now, this.model, id, now - grace - 1])
            : consumeUnconsumed(trx, [now, this.model, id]),
        keys,
      );
      if (consumed.length > 0) return;
      const [row] = await grantOfPayload(db, [this.model, id]);
      if (row?.grant_id) await revokeGrant(row.grant_id);
      throw new errors.InvalidGrant(label);
    }

    async destroy(id: string): Promise<void> {
      await commits.write((trx) => deletePayload.id(trx, [this.model, id]), [recordKey(this.model, id), modelKey(this.model)]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await commits.write((trx) => deletePayload.grant_id(trx, [this.model, grantId]), [sweepKey(this.model), modelKey(this.model)]);
    }
  };
}

/** A session of a person as oidc-provider keeps it: which apps it signed in to, under which sid. */
export interface StoredSession {
  accountId: string;
  authorizations: Record<string, { sid?: string }>;
}

export async function sessionsOfAccount(db: Kysely<Database>, accountId: string): Promise<StoredSession[]> {
  const rows = await db.selectFrom('oidc_payloads').select('payload').where('model', '=', 'Session').where('account_id', '=', accountId).execute();
  return rows.map((row) => {
    const payload = JSON.parse(row.payload) as { authorizations?: StoredSession['authorizations'] };
    return { accountId, authorizations: payload.authorizations ?? {} };
  });
}

/** Ends every session of a user and revokes every grant, code and token issued to them. */
export async function revokeEverythingOfAccount(db: Kysely<Database>, accountId: string): Promise<number> {
  const result = await db.deleteFrom('oidc_payloads').where('account_id', '=', accountId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes expired provider rows in small batches so a large backlog never blocks requests for long. */
export async function purgeExpiredPayloads(db: Kysely<Database>, clock: Clock, batchSize = 100): Promise<number> {
  const now = epochSeconds(clock);
  let total = 0;
  for (;;) {
    const batch = await db
      .selectFrom('oidc_payloads')
      .select(['model', 'id'])
      .where('expires_at', '<=', now)
      .limit(batchSize)
      .execute();
    if (batch.length === 0) return total;
    await db
      .deleteFrom('oidc_payloads')
      .where((eb) => eb.or(batch.map((r) => eb.and([eb('model', '=', r.model), eb('id', '=', r.id)]))))
      .execute();
    total += batch.length;
    if (batch.length < batchSize) return total;
  }
}
