import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import type { PasswordHasher } from '../accounts/passwords.ts';
import { verifyCredentials } from '../accounts/credentials.ts';
import { readForm } from '../http/form-body.ts';
import { HttpError } from '../http/http-error.ts';
import { scopeDescriptions } from '../oidc/scopes.ts';
import { findApiByIdentifier } from '../apis/apis.ts';
import type { Csrf } from './csrf.ts';
import type { RenderPage } from './render.ts';

export interface InteractionDependencies {
  provider: Provider;
  db: Kysely<Database>;
  hasher: PasswordHasher;
  csrf: Csrf;
  renderPage: RenderPage;
  onSignIn(outcome: 'success' | 'failure'): void;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SIGN_IN_FAILED = 'The email or password is not correct.';

/** Login, consent and abort: the pages oidc-provider sends the browser to when it needs the user. */
export function createInteractionRouter({ provider, db, hasher, csrf, renderPage, onSignIn }: InteractionDependencies): Router {
  const router = new Router();

  router.use('/interaction', async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
  });

  async function loadInteraction(ctx: Context, expectedPrompt?: string): Promise<Details> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    // The cookie names the interaction this browser is in; a URL for another one is a stale tab
    // or a forged link.
    if (details.uid !== ctx.params.uid) {
      throw new HttpError(400, 'This sign-in has expired', 'Go back to the application and start signing in again.');
    }
    if (expectedPrompt && details.prompt.name !== expectedPrompt) {
      throw new HttpError(400, 'This page is out of date', 'Go back to the application and start signing in again.');
    }
    return details;
  }

  async function readCheckedForm(ctx: Context): Promise<Record<string, string>> {
    const form = await readForm(ctx);
    if (!csrf.isValid(ctx, `interaction:${ctx.params.uid}`, form.csrf)) {
      throw new HttpError(403, 'This form has expired', 'Go back to the application and start signing in again.');
    }
    return form;
  }

  async function clientName(details: Details): Promise<string> {
    const client = await provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
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

  async function renderLogin(ctx: Context, details: Details, extra: { email?: string; error?: string } = {}) {
    ctx.type = 'html';
    ctx.body = await renderPage('login', {
      title: 'Sign in',
      uid: details.uid,
      csrf: csrf.tokenFor(ctx, `interaction:${details.uid}`),
      clientName: await clientName(details),
      email: extra.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: extra.error ?? null,
    });
  }

  async function finish(ctx: Context, result: Parameters<Provider['interactionResult']>[2], merge: boolean) {
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  router.get('/interaction/:uid', async (ctx) => {
    const details = await loadInteraction(ctx);
    if (details.prompt.name === 'login') return renderLogin(ctx, details);
    if (details.prompt.name !== 'consent') {
      throw new HttpError(400, 'Unsupported request', 'Latchkey cannot complete this kind of sign-in request.');
    }
    const missing = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
    const requested = String(details.params.scope ?? '').split(' ').filter((s) => missing.includes(s));
    const apiItems = await describeApiScopes(details.prompt.details.missingResourceScopes as Record<string, string[]> | undefined);
    ctx.type = 'html';
    ctx.body = await renderPage('consent', {
      title: 'Allow access',
      uid: details.uid,
      csrf: csrf.tokenFor(ctx, `interaction:${details.uid}`),
      clientName: await clientName(details),
      scopes: [...requested.map((s) => scopeDescriptions[s] ?? s), ...apiItems],
    });
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const form = await readCheckedForm(ctx);
    const details = await loadInteraction(ctx, 'login');
    const email = (form.email ?? '').slice(0, 254);
    const user = await verifyCredentials(db, hasher, email, form.password ?? '');
    onSignIn(user ? 'success' : 'failure');
    if (!user) return renderLogin(ctx, details, { email, error: SIGN_IN_FAILED });
    await finish(ctx, { login: { accountId: user.id, amr: ['pwd'] } }, false);
  });

  router.post('/interaction/:uid/confirm', async (ctx) => {
    await readCheckedForm(ctx);
    const details = await loadInteraction(ctx, 'consent');
    const { prompt, params, session } = details;
    if (!session) throw new HttpError(400, 'This sign-in has expired', 'Go back to the application and start signing in again.');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    if (!grant) throw new HttpError(400, 'This sign-in has expired', 'Go back to the application and start signing in again.');
    const missingScope = prompt.details.missingOIDCScope as string[] | undefined;
    if (missingScope) grant.addOIDCScope(missingScope.join(' '));
    const missingClaims = prompt.details.missingOIDCClaims as string[] | undefined;
    if (missingClaims) grant.addOIDCClaims(missingClaims);
    const missingResources = prompt.details.missingResourceScopes as Record<string, string[]> | undefined;
    for (const [indicator, scopes] of Object.entries(missingResources ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await finish(ctx, { consent: details.grantId ? {} : { grantId } }, true);
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    await readCheckedForm(ctx);
    await loadInteraction(ctx);
    await finish(ctx, { error: 'access_denied', error_description: 'The user denied the request' }, false);
  });

  return router;
}
