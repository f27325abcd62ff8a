import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createCookieKeys } from '../src/http/cookie-keys.ts';
import { loadConfig } from '../src/config.ts';
import { createServer } from '../src/server.ts';
import { freshDatabasePerTest, testEnv } from './helpers/database.ts';
import { admin } from './helpers/admin.ts';

// keygrip is what Koa signs cookies with by default; cookies it signed must stay valid.
const Keygrip = createRequire(import.meta.url)('keygrip') as new (keys: string[]) => { sign(data: string): string; index(data: string, digest: string): number };

describe('cookie signing keys', () => {
  const data = '_session=0f6d5f3a9b2c4e1d8a7b6c5d4e3f2a1b';

  it('signs exactly as keygrip does, so cookies set before stay valid', () => {
    const ours = createCookieKeys(['newest key', 'older key']);
    const theirs = new Keygrip(['newest key', 'older key']);
    expect(ours.sign(data)).toBe(theirs.sign(data));
    expect(ours.index(data, theirs.sign(data))).toBe(0);
    expect(new Keygrip(['older key']).index(data, ours.sign(data))).toBe(-1);
  });

  it('accepts a signature under an older key and says which one', () => {
    const signedEarlier = createCookieKeys(['older key']).sign(data);
    const keys = createCookieKeys(['newest key', 'older key']);
    expect(keys.index(data, signedEarlier)).toBe(1);
    expect(keys.verify(data, signedEarlier)).toBe(true);
  });

  it('refuses a changed value, a changed, shortened or missing signature, and an unknown key', () => {
    const keys = createCookieKeys(['newest key', 'older key']);
    const signature = keys.sign(data);
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    expect(keys.index(`${data}x`, signature)).toBe(-1);
    expect(keys.index(data, flipped)).toBe(-1);
    expect(keys.index(data, signature.slice(0, -1))).toBe(-1);
    expect(keys.index(data, '')).toBe(-1);
    expect(keys.index(data, undefined as unknown as string)).toBe(-1);
    expect(keys.index(data, createCookieKeys(['someone else']).sign(data))).toBe(-1);
    expect(keys.verify(data, flipped)).toBe(false);
  });

  it('needs a key', () => {
    expect(() => createCookieKeys([])).toThrow('at least one key');
  });
});

describe('the cookie keys of a server', () => {
  const fresh = freshDatabasePerTest();

  it('are the ones the provider checks its own cookies with, also after new signing keys rebuild it', async () => {
    const config = loadConfig({ ...testEnv(fresh.url), ISSUER: 'http://127.0.0.1:1' });
    const server = await createServer({ config, db: fresh.database.db, log: () => {} });
    try {
      // Given the secrets instead, the provider would read its session and interaction cookies
      // through a keygrip of its own, made again for every request.
      // (The provider copies its configuration, so the functions are what can be compared.)
      const functionsOf = (keys: unknown) => {
        const { sign, index } = keys as { sign?: unknown; index?: unknown };
        return [sign, index];
      };
      expect(Array.isArray(server.provider.keys)).toBe(false);
      expect(functionsOf(server.provider.keys)).toEqual(functionsOf(server.app.keys));
      expect((await admin(fresh.url, ['keys', 'rotate', '--alg', 'ES256', '--lead-time', '0'])).code).toBe(0);
      expect(await server.refreshKeys()).toBe(true);
      expect(functionsOf(server.provider.keys)).toEqual(functionsOf(server.app.keys));
    } finally {
      server.stop();
    }
  });
});
