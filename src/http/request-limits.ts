import type { Context, Next } from 'koa';
import { HttpError } from './http-error.ts';

/** No endpoint needs more; a larger body is refused before anyone reads it. */
export const MAX_BODY_BYTES = 64 * 1024;

export function bodySizeLimit() {
  // Not async: it has nothing to do after the rest, and each async step costs every request.
  return (ctx: Context, next: Next) => {
    const length = Number(ctx.req.headers['content-length'] || 0);
    if (length > MAX_BODY_BYTES) {
      throw new HttpError(413, 'error.tooLarge.title', 'error.tooLarge.message');
    }
    return next();
  };
}

// oidc-provider's endpoints and their methods (its default routes), so that a wrong method gets
// 405 with Allow rather than falling through to 404. CORS preflights (OPTIONS) are its own.
const PROVIDER_ROUTES: Record<string, string[]> = {
  '/.well-known/openid-configuration': ['GET'],
  '/auth': ['GET'],
  '/token': ['POST'],
  '/me': ['GET', 'POST'],
  '/jwks': ['GET'],
  '/token/introspection': ['POST'],
  '/token/revocation': ['POST'],
  '/request': ['POST'],
  '/device/auth': ['POST'],
  '/device': ['GET', 'POST'],
  '/session/end': ['GET'],
  '/session/end/confirm': ['POST'],
  '/session/end/success': ['GET'],
};

/** The 405 for a known provider path asked with a method it does not serve, else null. */
export function methodNotAllowed(ctx: Context): HttpError | null {
  const allowed = PROVIDER_ROUTES[ctx.path];
  if (!allowed || allowed.includes(ctx.method) || (ctx.method === 'HEAD' && allowed.includes('GET'))) return null;
  return new HttpError(405, 'error.method.title', 'error.method.message', { Allow: allowed.join(', ') });
}
