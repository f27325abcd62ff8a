import crypto from 'node:crypto';
import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { errorPageFor } from '../oidc/error-pages.ts';
import type { RenderPage } from '../interactions/render.ts';
import { HttpError } from './http-error.ts';

export type Logger = (entry: Record<string, unknown>) => void;

export const jsonLogger: Logger = (entry) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
};

interface Shown {
  status: number;
  title: string;
  message: string;
  headers: Record<string, string>;
}

function describe(err: unknown): Shown | null {
  if (err instanceof HttpError) return { status: err.status, title: err.title, message: err.message, headers: err.headers };
  if (err instanceof oidcErrors.SessionNotFound) {
    return { status: err.status, ...errorPageFor('session_not_found', undefined), headers: {} };
  }
  if (err instanceof oidcErrors.OIDCProviderError) {
    const page = errorPageFor(err.error, err.error_description);
    return { status: err.status, ...page, headers: {} };
  }
  // http-errors raised by Koa and the router (405, 413, …) carry `expose` for client errors.
  const e = err as { status?: number; expose?: boolean; message?: string; headers?: Record<string, string> };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return { status: e.status, title: 'Request refused', message: e.message ?? 'The request was refused.', headers: e.headers ?? {} };
  }
  return null;
}

/**
 * Every error raised by our routes ends here: known ones become a page with their status,
 * anything else is logged with a request id and shown only as that id, never as a stack.
 */
export function errorPages(renderPage: RenderPage, log: Logger) {
  return async (ctx: Context, next: Next) => {
    const requestId = crypto.randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
      if (ctx.status === 404 && ctx.body == null && !ctx.headerSent) {
        throw new HttpError(404, 'Page not found', 'There is nothing at this address.');
      }
    } catch (err) {
      const shown = describe(err);
      if (!shown) {
        log({ level: 'error', requestId, method: ctx.method, path: ctx.path, error: err instanceof Error ? err.stack : String(err) });
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
      ctx.type = 'html';
      ctx.body = await renderPage('error', {
        title: page.title,
        message: page.message,
        reference: shown ? null : requestId,
      });
    }
  };
}
