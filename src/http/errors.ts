import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { errorPageFor } from '../oidc/error-pages.ts';
import type { RenderPage } from '../interactions/render.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { HttpError } from './http-error.ts';
import type { Logger } from './logging.ts';
import type { MessageKey, Translate } from '../i18n/catalogue.ts';
import { methodNotAllowed } from './request-limits.ts';

interface Shown {
  status: number;
  title: MessageKey;
  message: MessageKey | null;
  detail?: string | null;
  headers: Record<string, string>;
  vars?: Record<string, string>;
  backTo?: string | null;
}

const RETRY_AFTER_SECONDS = '5';

const unavailable: Shown = {
  status: 503,
  title: 'error.unavailable.title',
  message: 'error.unavailable.message',
  headers: { 'Retry-After': RETRY_AFTER_SECONDS },
};

function describe(err: unknown): Shown | null {
  if (err instanceof HttpError) {
    return { status: err.status, title: err.title, message: err.messageKey, headers: err.headers, vars: err.vars, backTo: err.backTo };
  }
  if (err instanceof oidcErrors.SessionNotFound) {
    return { status: err.status, ...errorPageFor('session_not_found', undefined), headers: {} };
  }
  if (err instanceof oidcErrors.OIDCProviderError) {
    return { status: err.status, ...errorPageFor(err.error, err.error_description), headers: {} };
  }
  if (isDatabaseUnavailable(err)) return unavailable;
  // http-errors raised by Koa and the router (405, 413, …) carry `expose` for client errors.
  const e = err as { status?: number; expose?: boolean; message?: string; headers?: Record<string, string> };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return { status: e.status, title: 'error.requestRefused.title', message: 'error.requestRefused.message', headers: e.headers ?? {} };
  }
  return null;
}

// oidc-provider refuses a code-verification POST that arrives without a session (a forged or
// stale form), then fails while saving the empty session it made for it. Its refusal, already
// in the response, is the right answer.
function isProviderRefusalAfterEmptySession(err: unknown, ctx: Context): boolean {
  return err instanceof TypeError && err.message === 'persist can only be called on previously persisted Sessions' && ctx.status >= 400 && ctx.status < 500;
}

function wantsJson(ctx: Context): boolean {
  return ctx.accepts('html', 'json') === 'json' || (ctx.method === 'POST' && !ctx.path.startsWith('/interaction'));
}

/**
 * Every error raised by our routes ends here: known ones become a page with their status,
 * anything else is logged with the request id and shown only as that id, never as a stack.
 * A database outage is a 503 with Retry-After, from our routes and from the provider's alike
 * (the provider answers 500 itself and reports the cause through `server_error`, which marks
 * ctx.state.databaseUnavailable).
 */
export function errorPages(renderPage: RenderPage, log: Logger, english: Translate) {
  return async (ctx: Context, next: Next) => {
    const requestId = ctx.state.requestId as string;
    try {
      await next();
      if (ctx.state.databaseUnavailable) throw Object.assign(new Error('database unavailable'), { code: 'ECONNREFUSED' });
      if (ctx.status === 404 && ctx.body == null && !ctx.headerSent) {
        throw methodNotAllowed(ctx) ?? new HttpError(404, 'error.notFound.title', 'error.notFound.message');
      }
    } catch (err) {
      if (isProviderRefusalAfterEmptySession(err, ctx)) return;
      const shown = describe(err);
      if (!shown) {
        log({ level: 'error', event: 'unhandled_error', requestId, method: ctx.method, path: ctx.path, error: err instanceof Error ? err.stack : String(err) });
      } else if (shown.status === 503) {
        log({ level: 'warn', event: 'database_unavailable', requestId, path: ctx.path, error: err instanceof Error ? err.message : String(err) });
      }
      const page: Shown = shown ?? { status: 500, title: 'error.server.title', message: 'error.server.message', headers: {} };
      if (ctx.headerSent) return;
      ctx.status = page.status;
      ctx.set(page.headers);
      ctx.set('Cache-Control', 'no-store');
      if (wantsJson(ctx)) {
        const error = page.status === 503 ? 'temporarily_unavailable' : page.status >= 500 ? 'server_error' : 'invalid_request';
        // API clients get the English text: error_description is for developers (RFC 6749 §5.2).
        const description = page.detail ?? english(page.message ?? page.title, page.vars);
        ctx.body = { error, error_description: description, ...(shown ? {} : { reference: requestId }) };
        return;
      }
      await renderPage(ctx, 'error', {
        title: page.title,
        message: page.message,
        vars: page.vars ?? {},
        detail: page.detail ?? null,
        backTo: page.backTo ?? null,
        reference: shown ? null : requestId,
      });
    }
  };
}
