import crypto from 'node:crypto';

/** What Koa's cookies need to sign and check signed cookies (keygrip's interface). */
export interface CookieKeys {
  sign(data: string): string;
  verify(data: string, digest: string): boolean;
  index(data: string, digest: string): number;
}

/**
 * Signs cookies as keygrip does (HMAC-SHA1 in base64url under the newest key, older keys still
 * accepted), so cookies already set stay valid, without keygrip's cost on every request: it
 * turns the secret into a key on every HMAC and compares digests through two more HMACs under
 * fresh random bytes. Here each key is made once, and a digest of the right length is compared
 * with timingSafeEqual, which is constant-time already.
 */
export function createCookieKeys(secrets: readonly string[]): CookieKeys {
  if (secrets.length === 0) throw new Error('cookie signing needs at least one key');
  const keys = secrets.map((secret) => crypto.createSecretKey(Buffer.from(secret)));
  const digestWith = (key: crypto.KeyObject, data: string) => crypto.createHmac('sha1', key).update(data).digest('base64url');

  function index(data: string, digest: string): number {
    const presented = Buffer.from(typeof digest === 'string' ? digest : '');
    for (let i = 0; i < keys.length; i++) {
      const expected = Buffer.from(digestWith(keys[i]!, data));
      if (expected.length === presented.length && crypto.timingSafeEqual(expected, presented)) return i;
    }
    return -1;
  }

  return {
    sign: (data) => digestWith(keys[0]!, data),
    verify: (data, digest) => index(data, digest) > -1,
    index,
  };
}
