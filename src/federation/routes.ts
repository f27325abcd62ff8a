import crypto from 'node:crypto';
import Router from '@koa/router';
import type { DeleteQueryBuilder, DeleteResult, Kysely, Selectable } from 'kysely';
import type Provider from 'oidc-provider';
import * as oidc from 'openid-client';
import type { Database, FederationFlowTable } from '../db/schema.ts';
import { readForm } from '../http/form-body.ts';
import { HttpError } from '../http/http-error.ts';
import type { Csrf } from '../interactions/csrf.ts';
import type { AuditEvent } from '../audit/audit.ts';
import { epochSeconds, type Clock } from '../time.ts';
import { isPostgres } from '../db/database.ts';
import { reusableQuery } from '../db/reusable-query.ts';
import { findProviderRow, toIdentityProvider, type IdentityProvider } from './providers.ts';
import { resolveUpstreamAccount, type UpstreamClaims } from './linking.ts';
import { UpstreamUnavailable, type UpstreamDirectory } from './upstream.ts';

export const CALLBACK_PATH = '/federation/callback';
// Binds the callback to the browser that started the flow (OAuth 2.0 Security BCP §4.7).
const FLOW_COOKIE = 'latchkey.federation';
const FLOW_TTL_SECONDS = 10 * 60;

type FlowRow = Selectable<FederationFlowTable>;

export interface FederationDependencies {
  provider: () => Provider;
  db: Kysely<Database>;
  csrf: Csrf;
  upstream: UpstreamDirectory;
  issuer: string;
  audit(event: AuditEvent): Promise<void>;
  clock: Clock;
}

/** "Continue with …" at an upstream OpenID Connect provider, and the way back. */
export function createFederationRouter(deps: FederationDependencies): Router {
  const { db, csrf, upstream, audit, clock } = deps;
  const router = new Router();
  const redirectUri = `${deps.issuer}${CALLBACK_PATH}`;

  router.post('/interaction/:uid/federated/:provider', async (ctx) => {
    const form = await readForm(ctx);
    if (!csrf.isValid(ctx, `interaction:${ctx.params.uid}`, form.csrf)) {
      throw new HttpError(403, 'error.formExpired.title', 'error.expired.message');
    }
    const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid || details.prompt.name !== 'login') {
      throw new HttpError(400, 'error.expired.title', 'error.expired.message');
    }
    const row = await findProviderRow(db, ctx.params.provider ?? '');
    if (!row || row.disabled) throw new HttpError(404, 'error.notFound.title', 'error.notFound.message');
    const provider = toIdentityProvider(row);
    let config: oidc.Configuration;
    try {
      config = await upstream(row);
    } catch (err) {
      if (err instanceof UpstreamUnavailable) throw federationFailure(provider, 'error.federation.unavailable', details.uid, 502);
      throw err;
    }
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    await db
      .insertInto('federation_flows')
      .values({
        state,
        interaction_uid: details.uid,
        provider_id: provider.id,
        nonce,
        code_verifier: verifier,
        pending_subject: null,
        pending_email: null,
        resolved_user_id: null,
        expires_at: epochSeconds(clock) + FLOW_TTL_SECONDS,
      })
      .execute();
    ctx.cookies.set(FLOW_COOKIE, state, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: CALLBACK_PATH, signed: true, maxAge: FLOW_TTL_SECONDS * 1000 });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: provider.scope,
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    ctx.status = 303;
    ctx.redirect(url.href);
  });

  /**
   * What a callback found, for the next step on its interaction. Stored under a new key the
   * browser never sees: the flow cookie's state is spent, so no callback can pick this up again.
   */
  async function keepOutcome(flow: FlowRow, outcome: Pick<FlowRow, 'pending_subject' | 'pending_email'> | Pick<FlowRow, 'resolved_user_id'>): Promise<boolean> {
    // Kept only while the provider is enabled: disabling it deletes the outcomes kept so far,
    // and this one may be written after that, the upstream's answer having taken a while.
    // On PostgreSQL the provider's row is locked against a disable until this commits; SQLite
    // transactions hold the write lock from their start.
    return db
      .transaction()
      .execute(async (trx) => {
        await trx
          .insertInto('federation_flows')
          .values({ ...flow, ...outcome, state: oidc.randomState(), expires_at: epochSeconds(clock) + FLOW_TTL_SECONDS })
          .execute();
        const enabled = await trx
          .selectFrom('identity_providers')
          .select('id')
          .where('id', '=', flow.provider_id)
          .where('disabled', '=', 0)
          .$if(isPostgres(trx), (qb) => qb.forShare())
          .executeTakeFirst();
        if (!enabled) throw new ProviderDisabled();
        return true;
      })
      .catch((err: unknown) => {
        if (err instanceof ProviderDisabled) return false;
        throw err;
      });
  }

  router.get(CALLBACK_PATH, async (ctx) => {
    const returned = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const started = ctx.cookies.get(FLOW_COOKIE, { signed: true }) ?? '';
    ctx.cookies.set(FLOW_COOKIE, null, { path: CALLBACK_PATH });
    // The flow this browser started, found by its cookie; a state that differs is forged or stale.
    // Taken and removed in one statement, so a replayed callback, or a second one racing it
    // with a fresh upstream code, finds nothing to reuse the state, nonce and verifier with.
    const flow = started
      ? await db.deleteFrom('federation_flows').where('state', '=', started).where('expires_at', '>', epochSeconds(clock)).returningAll().executeTakeFirst()
      : undefined;
    const row = flow ? await findProviderRow(db, flow.provider_id) : undefined;
    const provider = row ? toIdentityProvider(row) : null;
    if (!flow || !row || !provider || !returned || !crypto.timingSafeEqual(Buffer.from(digest(returned)), Buffer.from(digest(started)))) {
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: 'bad_state', ip: ctx.ip, details: { provider: provider?.id } });
      throw federationFailure(provider, 'error.federation.state', flow?.interaction_uid);
    }
    // An administrator who disables a provider stops the sign-ins already under way at it too,
    // whether found before the upstream round trip or while keeping its answer.
    const disabledMidway = async (details: Record<string, unknown> = {}, userId?: string) => {
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: 'provider_disabled', userId, ip: ctx.ip, details: { provider: provider.id, ...details } });
      return federationFailure(provider, 'error.federation.providerDisabled', flow.interaction_uid, 403);
    };
    if (row.disabled) throw await disabledMidway();

    if (typeof ctx.query.error === 'string') {
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: `upstream_${ctx.query.error}`.slice(0, 60), ip: ctx.ip, details: { provider: provider.id } });
      throw federationFailure(provider, 'error.federation.cancelled', flow.interaction_uid);
    }

    let claims: UpstreamClaims;
    try {
      const config = await upstream(row);
      const current = new URL(ctx.originalUrl, redirectUri);
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: flow.code_verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims() as UpstreamClaims;
    } catch (err) {
      const unavailable = err instanceof UpstreamUnavailable || (err as { cause?: { code?: string } })?.cause?.code === 'ECONNREFUSED' || /fetch failed/i.test(String(err));
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: unavailable ? 'upstream_unavailable' : 'upstream_answer_invalid', ip: ctx.ip, details: { provider: provider.id } });
      throw federationFailure(provider, unavailable ? 'error.federation.unavailable' : 'error.federation.failed', flow.interaction_uid, unavailable ? 502 : 400);
    }

    const resolution = await resolveUpstreamAccount(db, provider, claims);
    if (resolution.kind === 'refused') {
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: resolution.reason, ip: ctx.ip, details: { provider: provider.id, subject: claims.sub } });
      throw federationFailure(provider, resolution.reason === 'disabled' ? 'error.federation.disabled' : 'error.federation.noAccount', flow.interaction_uid, 403);
    }
    if (resolution.kind === 'link_required') {
      // Kept for the password sign-in on this interaction, which then makes the link.
      if (!(await keepOutcome(flow, { pending_subject: claims.sub, pending_email: resolution.email }))) throw await disabledMidway({ subject: claims.sub });
      await audit({ event: 'sign_in.federated', outcome: 'failure', reason: 'link_required', email: resolution.email, ip: ctx.ip, details: { provider: provider.id } });
      ctx.status = 303;
      ctx.redirect(`/interaction/${flow.interaction_uid}`);
      return;
    }
    // The interaction's cookie is scoped to its own path, so the sign-in is finished there.
    // An account made by sign-up, or a link made by verified email, from this answer stays (it
    // was committed before); the audit row names it.
    if (!(await keepOutcome(flow, { resolved_user_id: resolution.user.id }))) {
      throw await disabledMidway({ subject: claims.sub, created: resolution.created, linked: resolution.linked }, resolution.user.id);
    }
    await audit({
      event: 'sign_in.federated',
      outcome: 'success',
      userId: resolution.user.id,
      email: resolution.user.email,
      ip: ctx.ip,
      details: { provider: provider.id, created: resolution.created, linked: resolution.linked },
    });
    ctx.status = 303;
    ctx.redirect(`/interaction/${flow.interaction_uid}/federated`);
  });

  router.get('/interaction/:uid/federated', async (ctx) => {
    const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) throw new HttpError(400, 'error.expired.title', 'error.expired.message');
    const now = epochSeconds(clock);
    const flow = await takeFlow(db, (qb) => qb.where('interaction_uid', '=', details.uid).where('resolved_user_id', 'is not', null).where('expires_at', '>', now));
    if (!flow) throw new HttpError(400, 'error.expired.title', 'error.expired.message', {}, { backTo: `/interaction/${details.uid}` });
    const redirectTo = await deps.provider().interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId: flow.resolved_user_id!, amr: ['fed'] } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });

  return router;
}

class ProviderDisabled extends Error {}

/**
 * Takes (deletes and returns) the flow the filter picks, only while its provider is enabled:
 * what a callback kept is used once, and never for a provider disabled since.
 */
export async function takeFlow(db: Kysely<Database>, filter: (qb: DeleteQueryBuilder<Database, 'federation_flows', DeleteResult>) => DeleteQueryBuilder<Database, 'federation_flows', DeleteResult>) {
  return filter(db.deleteFrom('federation_flows'))
    .where('provider_id', 'in', (eb) => eb.selectFrom('identity_providers').select('id').where('disabled', '=', 0))
    .returningAll()
    .executeTakeFirst();
}

function digest(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}

type FederationMessage =
  | 'error.federation.unavailable'
  | 'error.federation.providerDisabled'
  | 'error.federation.cancelled'
  | 'error.federation.failed'
  | 'error.federation.state'
  | 'error.federation.disabled'
  | 'error.federation.noAccount';

/** The error page for a federated sign-in, with the way back to the login page when known. */
function federationFailure(provider: IdentityProvider | null, message: FederationMessage, uid?: string, status = 400): HttpError {
  return new HttpError(status, 'error.federation.title', message, {}, { vars: { provider: provider?.name ?? '?' }, ...(uid ? { backTo: `/interaction/${uid}` } : {}) });
}

const pendingFlowOf = reusableQuery((db) =>
  db
    .selectFrom('federation_flows')
    .select(['state', 'provider_id', 'pending_subject', 'pending_email'])
    .where('interaction_uid', '=', '')
    .where('pending_subject', 'is not', null)
    .where('expires_at', '>', 0),
);

/** The pending link for an interaction, if a federated sign-in found an account needing a password first. */
export async function pendingLinkOf(db: Kysely<Database>, interactionUid: string, now: number) {
  // Two look-ups rather than a join: SQLite's planner weighs the values bound to a join's
  // parameters, and then prepares the statement anew every time it runs. This one runs on
  // every login page and password sign-in, and almost always finds nothing.
  const [flow] = await pendingFlowOf(db, [interactionUid, now]);
  if (!flow) return undefined;
  const provider = await db.selectFrom('identity_providers').select('name').where('id', '=', flow.provider_id).executeTakeFirst();
  return provider ? { ...flow, name: provider.name } : undefined;
}
