import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { advanceClock } from './helpers/clock.ts';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';

let database: TestDatabase;
let first: RunningServer;
let second: RunningServer;
let app: { clientId: string; clientSecret: string | null };

beforeAll(async () => {
  database = await createTestDatabase();
  first = await startLatchkey({ databaseUrl: database.url });
  second = await startLatchkey({ databaseUrl: database.url });
  app = await registerApp(database.url, REDIRECT_URI);
  await registerUser(database.url, 'keys@example.com');
});
afterAll(async () => {
  await first.close();
  await second.close();
  await database.drop();
});
afterEach(() => {
  vi.useRealTimers();
});

const kidsOf = async (server: RunningServer) => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string; alg: string }[] }).keys;
const signIn = async (server: RunningServer, scope = 'openid') => (await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret)).signIn('keys@example.com', TEST_PASSWORD, scope);
const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid;
const keyList = async () => (await admin(database.url, ['keys', 'list', '--json'])).json<{ kid: string; alg: string; state: string }[]>();


describe('signing key rotation', () => {
  it('publishes the new key before using it, switches, and retires the old key after its tokens expire', async () => {
    const before = await signIn(first);
    const oldKid = kidOf(before.id_token!);
    const rotated = await admin(database.url, ['keys', 'rotate', '--lead-time', '600']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newKid = (await keyList()).find((k) => k.state === 'pending')!.kid;
    expect((await keyList()).find((k) => k.kid === oldKid)?.state).toBe('active');

    // Both instances publish the new key at once, and keep signing with the old one.
    for (const server of [first, second]) {
      expect(await server.refreshKeys()).toBe(true);
      expect((await kidsOf(server)).map((k) => k.kid)).toEqual([oldKid, newKid]);
      expect(kidOf((await signIn(server)).id_token!)).toBe(oldKid);
    }

    // After the lead time the new key signs; the old one stays published for old tokens.
    advanceClock(601);
    for (const server of [first, second]) {
      await server.refreshKeys();
      expect(kidOf((await signIn(server)).id_token!)).toBe(newKid);
      expect((await kidsOf(server)).map((k) => k.kid)).toEqual([newKid, oldKid]);
    }
    const jwks = createRemoteJWKSet(new URL(`${second.url}/jwks`));
    await expect(jwtVerify(before.id_token!, jwks, { currentDate: new Date(Date.now() - 601_000) })).resolves.toBeTruthy();
    expect((await keyList()).map((k) => [k.kid, k.state])).toEqual(expect.arrayContaining([[newKid, 'active'], [oldKid, 'retiring']]));

    // Once every token it signed has expired, the old key leaves the JWKS.
    advanceClock(86400 + 301);
    await first.refreshKeys();
    expect((await kidsOf(first)).map((k) => k.kid)).toEqual([newKid]);
    expect((await keyList()).find((k) => k.kid === oldKid)?.state).toBe('retired');
  });

  it('reaches a running instance through its own timer, without a restart', async () => {
    const quick = await startLatchkey({ databaseUrl: database.url, env: { KEY_REFRESH_SECONDS: '5' } });
    try {
      const before = (await kidsOf(quick)).map((k) => k.kid);
      await admin(database.url, ['keys', 'rotate', '--lead-time', '3600']);
      const deadline = Date.now() + 12_000;
      let after = before;
      while (after.length === before.length && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        after = (await kidsOf(quick)).map((k) => k.kid);
      }
      expect(after.length).toBe(before.length + 1);
    } finally {
      await quick.close();
    }
  });

  it('signs ID tokens with ES256 or EdDSA for clients that ask', async () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const refused = await admin(database.url, ['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT_URI, '--id-token-signing-alg', 'HS256']);
      expect(refused.stderr).toMatch(/--id-token-signing-alg must be one of/);
      expect((await admin(database.url, ['keys', 'rotate', '--alg', alg, '--lead-time', '0'])).code).toBe(0);
      await first.refreshKeys();
      const created = (await admin(database.url, ['client', 'create', '--name', `${alg} app`, '--redirect-uri', REDIRECT_URI, '--id-token-signing-alg', alg, '--json'])).json<{ clientId: string; clientSecret: string }>();
      const rp = await RelyingParty.discover(first.issuer, created.clientId, created.clientSecret);
      expect(rp.config.serverMetadata().id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', alg]));
      const tokens = await rp.signIn('keys@example.com', TEST_PASSWORD);
      expect(decodeProtectedHeader(tokens.id_token!).alg).toBe(alg);
      // Other clients keep RS256.
      expect(decodeProtectedHeader((await signIn(first)).id_token!).alg).toBe('RS256');
    }
  });

  it('refuses a bad rotation request', async () => {
    const bad = await admin(database.url, ['keys', 'rotate', '--alg', 'HS256']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--alg must be one of RS256, ES256, EdDSA/);
    expect((await admin(database.url, ['keys', 'rotate', '--lead-time', '-5'])).code).toBe(2);
  });
});
