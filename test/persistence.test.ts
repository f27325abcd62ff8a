import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import fs from 'node:fs';
import { loadConfig } from '../src/config.ts';
import { testDialect } from './helpers/database.ts';
import { ensureProviderKeys } from '../src/keys/keys.ts';
import { createSecretBox, developmentSecretFile, resolveSecretBox } from '../src/keys/secret-box.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startLatchkey();
});
afterAll(() => server.close());

async function jwksKids(issuer: string): Promise<string[]> {
  const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] };
  return jwks.keys.map((k) => k.kid);
}

describe('a restart on the same database', () => {
  it('keeps the signing key and honours refresh tokens issued before it', async () => {
    const app = await registerApp(server.databaseUrl, REDIRECT_URI);
    const user = await registerUser(server.databaseUrl, 'kept@example.com');
    const before = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
    const tokens = await before.signIn('kept@example.com', TEST_PASSWORD, 'openid offline_access');
    const kidsBefore = await jwksKids(server.issuer);
    const idTokenKid = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).kid;
    expect(kidsBefore).toEqual([idTokenKid]);

    await server.restart();

    expect(await jwksKids(server.issuer)).toEqual(kidsBefore);
    const after = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
    const refreshed = await oidc.refreshTokenGrant(after.config, tokens.refresh_token!);
    expect(refreshed.claims()?.sub).toBe(user.id);
    const rows = await server.database.db.selectFrom('keys').select(['kid', 'use']).execute();
    expect(rows.filter((r) => r.use === 'sig')).toHaveLength(1);
    expect(rows.filter((r) => r.use === 'cookie')).toHaveLength(1);
  });
});

describe('secrets at rest', () => {
  it.skipIf(testDialect !== 'sqlite')('keeps private keys, cookie keys and client secrets out of the database file in plain text', async () => {
    const app = await registerApp(server.databaseUrl, REDIRECT_URI);
    await registerUser(server.databaseUrl, 'at-rest@example.com');
    await (await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret)).signIn('at-rest@example.com', TEST_PASSWORD);
    const config = loadConfig({ DATABASE_URL: server.databaseUrl });
    const keys = await ensureProviderKeys(server.database.db, resolveSecretBox(config, () => {}), Math.floor(Date.now() / 1000));
    const secrets = [keys.signing[0]!.d!, keys.signing[0]!.p!, keys.cookie[0]!, app.clientSecret!];
    const files = [server.databaseUrl, `${server.databaseUrl}-wal`].filter((f) => fs.existsSync(f));
    const raw = files.map((f) => fs.readFileSync(f).toString('latin1')).join('');
    expect(raw.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(raw.includes(secret), 'a secret in the database file').toBe(false);
    expect(fs.statSync(developmentSecretFile(config)).mode & 0o077).toBe(0);
  });

  it('refuses to open the keys with another key-encryption secret', async () => {
    const wrong = createSecretBox('not the secret these keys were sealed with');
    await expect(ensureProviderKeys(server.database.db, wrong, Math.floor(Date.now() / 1000))).rejects.toThrow(/LATCHKEY_SECRET is not the one it was sealed with/);
  });
});
