import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { errorPageFor } from '../oidc/error-pages.ts';
import type { RenderPage } from '../interactions/render.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { HttpError } from './http-error.ts';
import type { Logger } from './logging.ts';
import { methodNotAllowed } from './request-limits.ts';

interface Shown {
  status: number;
  title: string;
  message: string;
  headers: Record<string, string>;
}

const RETRY_AFTER_SECONDS = '5';

const unavailable: Shown = {
  status: 503,
  title: 'Temporarily unavailable',
  message: 'Latchkey cannot reach its database right now. Please try again in a moment.',
  headers: { 'Retry-After': RETRY_AFTER_SECONDS },
};

function describe(err: unknown): Shown | null {
  if (err instanceof HttpError) return { status: err.status, title: err.title, message: err.message, headers: err.headers };
  if (err instanceof oidcErrors.SessionNotFound) {
    return { status: err.status, ...errorPageFor('session_not_found', undefined), headers: {} };
  }
  if (err instanceof oidcErrors.OIDCProviderError) {
    const page = errorPageFor(err.error, err.error_description);
    return { status: err.status, ...page, headers: {} };
  }
  if (isDatabaseUnavailable(err)) return unavailable;
  // http-errors raised by Koa and the router (405, 413, …) carry `expose` for client errors.
  const e = err as { status?: number; expose?: boolean; message?: string; headers?: Record<string, string> };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return { status: e.status, title: 'Request refused', message: e.message ?? 'The request was refused.', headers: e.headers ?? {} };
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
export function errorPages(renderPage: RenderPage, log: Logger) {
  return async (ctx: Context, next: Next) => {
    const requestId = ctx.state.requestId as string;
    try {
      await next();
      if (ctx.state.databaseUnavailable) throw Object.assign(new Error('database unavailable'), { code: 'ECONNREFUSED' });
      if (ctx.status === 404 && ctx.body == null && !ctx.headerSent) {
        throw methodNotAllowed(ctx) ?? new HttpError(404, 'Page not found', 'There is nothing at this address.');
      }
    } catch (err) {
      if (isProviderRefusalAfterEmptySession(err, ctx)) return;
      const shown = describe(err);
      if (!shown) {
        log({ level: 'error', event: 'unhandled_error', requestId, method: ctx.method, path: ctx.path, error: err instanceof Error ? err.stack : String(err) });
      } else if (shown.status === 503) {
        log({ level: 'warn', event: 'database_unavailable', requestId, path: ctx.path, error: err instanceof Error ? err.message : String(err) });
      }
      const page = shown ?? {
        status: 500,
        title: 'Something went wrong',
        message: 'Latchkey could not finish this request. Please try again.',
        headers: {},
      };
      if (ctx.headerSent) return;
      ctx.status = page.status;
      ctx.set(page.headers);
      ctx.set('Cache-Control', 'no-store');
      if (wantsJson(ctx)) {
        const error = page.status === 503 ? 'temporarily_unavailable' : page.status >= 500 ? 'server_error' : 'invalid_request';
        ctx.body = { error, error_description: page.message, ...(shown ? {} : { reference: requestId }) };
        return;
      }
      ctx.type = 'html';
      ctx.body = await renderPage('error', {
        title: page.title,
        message: page.message,
        reference: shown ? null : requestId,
      });
    }
  };
}
