import type { Context, Next } from 'koa';

// No inline script or style anywhere, and no framing (clickjacking on the login form).
// form-action is left out on purpose: browsers apply it to the redirect chain after a form
// POST, which would block the redirect back to the relying party.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Logos (the product's and each app's) are https or inline images.
  "img-src 'self' data: https:",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function securityHeaders(options: { https: boolean }) {
  return async (ctx: Context, next: Next) => {
    // Set on Node's response directly: nothing has been sent yet, and Koa's ctx.set allocates
    // arrays for each header it sets, a cost every request pays.
    const res = ctx.res;
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (options.https) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
    // Every page is about one person's sign-in and may hold a form token: never cache it.
    // (The media type compared as is: response.is() parses it and looks it up, on every request.)
    if (ctx.response.type === 'text/html' && !ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  };
}
