import type { Context, Next } from 'koa';
import { AccessDenied } from './errors.ts';
import { requireRole, requireScope } from './guards.ts';
import type { TokenVerifier } from './verifier.ts';

export interface ProtectOptions {
  /** Every one of these scopes is required. */
  scopes?: string[];
  /** At least one of these roles is required. */
  roles?: string[];
}

/**
 * Koa middleware: authenticates the request's access token, checks scopes and roles, and puts
 * the claims on ctx.state.accessToken. Refusals answer with the RFC 6750 status, challenge and
 * JSON error body.
 */
export function protect(verifier: TokenVerifier, options: ProtectOptions = {}) {
  return async (ctx: Context, next: Next) => {
    try {
      const claims = await verifier.authenticate({
        method: ctx.method,
        url: ctx.href,
        headers: { authorization: ctx.get('authorization') || undefined, dpop: ctx.get('dpop') || undefined },
      });
      if (options.scopes?.length) requireScope(claims, ...options.scopes);
      if (options.roles?.length) requireRole(claims, ...options.roles);
      ctx.state.accessToken = claims;
    } catch (err) {
      if (!(err instanceof AccessDenied)) throw err;
      ctx.status = err.status;
      ctx.set('WWW-Authenticate', err.challenge);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = err.body;
      return;
    }
    await next();
  };
}
