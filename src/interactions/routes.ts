import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import type { PasswordHasher } from '../accounts/passwords.ts';
import { verifyCredentials } from '../accounts/credentials.ts';
import { readForm } from '../http/form-body.ts';
import { HttpError } from '../http/http-error.ts';
import type { MessageKey } from '../i18n/catalogue.ts';
import { findClientRow, toClient } from '../clients/clients.ts';
import { listIdentityProviders } from '../federation/providers.ts';
import { pendingLinkOf, takeFlow } from '../federation/routes.ts';
import { linkAccount } from '../federation/linking.ts';
import { findApiByIdentifier } from '../apis/apis.ts';
import type { ThrottleSettings } from '../config.ts';
import { admitAttempt, releaseAttempt } from '../accounts/throttling.ts';
import type { AuditEvent } from '../audit/audit.ts';
import { epochSeconds, type Clock } from '../time.ts';
import type { Csrf } from './csrf.ts';
import type { RenderPage } from './render.ts';

export interface InteractionDependencies {
  /** The provider serving now (it is replaced when signing keys change). */
  provider: () => Provider;
  db: Kysely<Database>;
  hasher: PasswordHasher;
  csrf: Csrf;
  renderPage: RenderPage;
  onSignIn(outcome: 'success' | 'failure'): void;
  audit(event: AuditEvent): Promise<void>;
  throttling: ThrottleSettings;
  clock: Clock;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SIGN_IN_FAILED: PageMessage = { key: 'login.failed' };

/** A line a page shows: a catalogue message, or text that is data (an API's own words). */
type PageMessage = { key: MessageKey; vars?: Record<string, string | number>; text?: undefined } | { text: string; key?: undefined };

const scopeMessage = (scope: string): MessageKey => `scope.${scope}` as MessageKey;

/** Login, consent and abort: the pages oidc-provider sends the browser to when it needs the user. */
export function createInteractionRouter(deps: InteractionDependencies): Router {
  const { db, hasher, csrf, renderPage, onSignIn, audit, throttling, clock } = deps;
  const provider = () => deps.provider();
  const router = new Router();

  router.use('/interaction', async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
  });

  async function loadInteraction(ctx: Context, expectedPrompt?: string): Promise<Details> {
    const details = await provider().interactionDetails(ctx.req, ctx.res);
    // The cookie names the interaction this browser is in; a URL for another one is a stale tab
    // or a forged link.
    if (details.uid !== ctx.params.uid) {
      throw new HttpError(400, 'error.expired.title', 'error.expired.message');
    }
    if (expectedPrompt && details.prompt.name !== expectedPrompt) {
      throw new HttpError(400, 'error.outdated.title', 'error.expired.message');
    }
    return details;
  }

  async function readCheckedForm(ctx: Context): Promise<Record<string, string>> {
    const form = await readForm(ctx);
    if (!csrf.isValid(ctx, `interaction:${ctx.params.uid}`, form.csrf)) {
      throw new HttpError(403, 'error.formExpired.title', 'error.expired.message');
    }
    return form;
  }


  /** API permissions in words: "Invoices: Read invoices", or the scope name when it has no description. */
  async function describeApiScopes(byResource: Record<string, string[]> | undefined): Promise<string[]> {
    const items: string[] = [];
    for (const [identifier, scopes] of Object.entries(byResource ?? {})) {
      const api = await findApiByIdentifier(db, identifier);
      for (const scope of scopes) {
        const description = api?.scopes.find((s) => s.name === scope)?.description;
        items.push(`${api?.name ?? identifier}: ${description ?? scope}`);
      }
    }
    return items;
  }

  function retryAfterMessage(seconds: number): PageMessage {
    const minutes = Math.ceil(seconds / 60);
    return minutes === 1 ? { key: 'login.throttledOne' } : { key: 'login.throttled', vars: { minutes } };
  }

  /**
   * What the pages show of the app: its name, and its logo and policies when it has them. Read
   * from our table rather than the provider's metadata, which would refuse a data: logo.
   */
  async function clientOf(details: Details) {
    const row = await findClientRow(db, String(details.params.client_id));
    const client = row ? toClient(row) : null;
    return {
      name: client?.name ?? String(details.params.client_id),
      logo: client?.logoUri ?? null,
      policy: client?.policyUri ?? null,
      terms: client?.tosUri ?? null,
    };
  }

  const uiLocalesOf = (details: Details) => (typeof details.params.ui_locales === 'string' ? details.params.ui_locales : undefined);

  async function renderLogin(ctx: Context, details: Details, extra: { email?: string; error?: PageMessage } = {}) {
    const pending = await pendingLinkOf(db, details.uid, epochSeconds(clock));
    const providers = await listIdentityProviders(db, { enabledOnly: true });
    await renderPage(ctx, 'login', {
      providers: providers.map((p) => ({ id: p.id, name: p.name, label: p.buttonLabel })),
      pendingLink: pending ? { email: pending.pending_email, provider: pending.name } : null,
      title: 'login.title',
      uiLocales: uiLocalesOf(details),
      uid: details.uid,
      csrf: csrf.tokenFor(ctx, `interaction:${details.uid}`),
      client: await clientOf(details),
      email: extra.email ?? pending?.pending_email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: extra.error ?? null,
    });
  }

  /**
   * A federated sign-in that found this person's account by email waits for one password
   * sign-in as that account; this is it, so the upstream account is linked now.
   */
  async function completePendingLink(uid: string, user: { id: string; email: string }) {
    const pending = await pendingLinkOf(db, uid, epochSeconds(clock));
    if (!pending?.pending_subject || pending.pending_email !== user.email) return;
    // The flow is taken before the link is made: one whose provider has been disabled, or
    // taken by a concurrent sign-in, makes no link.
    const linked = await db.transaction().execute(async (trx) => {
      const taken = await takeFlow(trx, (qb) => qb.where('state', '=', pending.state));
      return taken ? linkAccount(trx, pending.provider_id, pending.pending_subject!, user.id) : false;
    });
    if (!linked) return;
    await audit({ event: 'account.linked', outcome: 'success', userId: user.id, email: user.email, details: { provider: pending.provider_id } });
  }

  async function finish(ctx: Context, result: Parameters<Provider['interactionResult']>[2], merge: boolean) {
    const redirectTo = await provider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  router.get('/interaction/:uid', async (ctx) => {
    const details = await loadInteraction(ctx);
    if (details.prompt.name === 'login') return renderLogin(ctx, details);
    if (details.prompt.name !== 'consent') {
      throw new HttpError(400, 'error.unsupported.title', 'error.unsupported.message');
    }
    const missing = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
    const requested = String(details.params.scope ?? '').split(' ').filter((s) => missing.includes(s));
    const apiItems = await describeApiScopes(details.prompt.details.missingResourceScopes as Record<string, string[]> | undefined);
    await renderPage(ctx, 'consent', {
      title: 'consent.title',
      uiLocales: uiLocalesOf(details),
      uid: details.uid,
      csrf: csrf.tokenFor(ctx, `interaction:${details.uid}`),
      client: await clientOf(details),
      scopes: [...requested.map((s): PageMessage => ({ key: scopeMessage(s) })), ...apiItems.map((text): PageMessage => ({ text }))],
    });
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const form = await readCheckedForm(ctx);
    const details = await loadInteraction(ctx, 'login');
    const email = (form.email ?? '').slice(0, 254);
    const clientId = String(details.params.client_id);
    const now = epochSeconds(clock);

    // A throttled account or address is refused before any password work is spent on it, and an
    // admitted attempt is counted as a failure until its password proves right.
    const admission = await admitAttempt(db, { email, ip: ctx.ip }, throttling, now);
    if (!admission.admitted) {
      const retryAfter = admission.blockedUntil - now;
      onSignIn('failure');
      await audit({ event: 'sign_in', outcome: 'failure', reason: 'throttled', email, clientId, ip: ctx.ip });
      ctx.status = 429;
      ctx.set('Retry-After', String(retryAfter));
      return renderLogin(ctx, details, { email, error: retryAfterMessage(retryAfter) });
    }

    const check = await verifyCredentials(db, hasher, email, form.password ?? '');
    if (!check.user) {
      onSignIn('failure');
      await audit({ event: 'sign_in', outcome: 'failure', reason: check.failure, email, clientId, ip: ctx.ip });
      const { accountBlock, addressBlock } = admission;
      if (accountBlock !== null || addressBlock !== null) {
        await audit({
          event: 'sign_in.throttled',
          outcome: 'failure',
          reason: accountBlock !== null ? 'account' : 'address',
          email,
          ip: ctx.ip,
          details: { until: new Date(Math.max(accountBlock ?? 0, addressBlock ?? 0) * 1000).toISOString() },
        });
      }
      return renderLogin(ctx, details, { email, error: SIGN_IN_FAILED });
    }
    onSignIn('success');
    await releaseAttempt(db, admission);
    await completePendingLink(details.uid, check.user);
    await audit({ event: 'sign_in', outcome: 'success', userId: check.user.id, email: check.user.email, clientId, ip: ctx.ip });
    await finish(ctx, { login: { accountId: check.user.id, amr: ['pwd'] } }, false);
  });

  router.post('/interaction/:uid/confirm', async (ctx) => {
    await readCheckedForm(ctx);
    const details = await loadInteraction(ctx, 'consent');
    const { prompt, params, session } = details;
    if (!session) throw new HttpError(400, 'error.expired.title', 'error.expired.message');
    const grant = details.grantId
      ? await provider().Grant.find(details.grantId)
      : new (provider().Grant)({ accountId: session.accountId, clientId: String(params.client_id) });
    if (!grant) throw new HttpError(400, 'error.expired.title', 'error.expired.message');
    const missingScope = prompt.details.missingOIDCScope as string[] | undefined;
    if (missingScope) grant.addOIDCScope(missingScope.join(' '));
    const missingClaims = prompt.details.missingOIDCClaims as string[] | undefined;
    if (missingClaims) grant.addOIDCClaims(missingClaims);
    const missingResources = prompt.details.missingResourceScopes as Record<string, string[]> | undefined;
    for (const [indicator, scopes] of Object.entries(missingResources ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await audit({
      event: 'consent.granted',
      outcome: 'success',
      userId: session.accountId,
      clientId: String(params.client_id),
      ip: ctx.ip,
      details: { scope: missingScope ?? [], resources: missingResources ?? {} },
    });
    await finish(ctx, { consent: details.grantId ? {} : { grantId } }, true);
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    await readCheckedForm(ctx);
    const details = await loadInteraction(ctx);
    await audit({
      event: details.prompt.name === 'consent' ? 'consent.denied' : 'sign_in.cancelled',
      outcome: 'failure',
      userId: details.session?.accountId,
      clientId: String(details.params.client_id),
      ip: ctx.ip,
    });
    await finish(ctx, { error: 'access_denied', error_description: 'The user denied the request' }, false);
  });

  return router;
}
