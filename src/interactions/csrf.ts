import crypto from 'node:crypto';
import type { Context } from 'koa';

export const CSRF_COOKIE = 'latchkey.csrf';
export const CSRF_FIELD = 'csrf';

/**
 * Signed double-submit tokens (OWASP CSRF cheat sheet): a random value in an HttpOnly cookie,
 * and in each form an HMAC of that value bound to the interaction. A cross-site page can
 * neither read the cookie nor compute the HMAC, and a token from one interaction is useless
 * for another.
 */
export function createCsrf(secret: string) {
  const key = crypto.createSecretKey(Buffer.from(crypto.hkdfSync('sha256', secret, 'latchkey', 'csrf token', 32)));

  const sign = (browserValue: string, purpose: string) => crypto.createHmac('sha256', key).update(`${browserValue}\n${purpose}`).digest('base64url');

  const browserValue = (ctx: Context): string => {
    const existing = ctx.cookies.get(CSRF_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const created = crypto.randomBytes(32).toString('base64url');
    ctx.cookies.set(CSRF_COOKIE, created, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/', overwrite: true });
    return created;
  };

  return {
    /** The token to put in a form for this purpose (an interaction uid). */
    tokenFor(ctx: Context, purpose: string): string {
      return sign(browserValue(ctx), purpose);
    },
    isValid(ctx: Context, purpose: string, token: unknown): boolean {
      const cookie = ctx.cookies.get(CSRF_COOKIE);
      if (!cookie || typeof token !== 'string' || token.length !== 43) return false;
      const expected = Buffer.from(sign(cookie, purpose));
      const actual = Buffer.from(token);
      return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
    },
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
