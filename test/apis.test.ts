import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty, registerRelyingParty } from './helpers/relying-party.ts';
import { startDemoApi, type DemoApi } from './helpers/demo-api.ts';
import { asPage } from './helpers/browser.ts';
import { createTokenVerifier } from '../src/resource-server/index.ts';

const API = 'https://api.example.com';
let server: RunningServer;
let demo: DemoApi;
let rp: RelyingParty;
let user: { id: string };

beforeAll(async () => {
  server = await startLatchkey();
  const created = await admin(server.databaseUrl, ['api', 'create', '--identifier', API, '--name', 'Invoices', '--scope', 'invoices:read', '--scope', 'invoices:write']);
  expect(created.code, created.stderr).toBe(0);
  await admin(server.databaseUrl, ['role', 'create', 'billing-admin']);
  await admin(server.databaseUrl, ['role', 'grant', 'billing-admin', '--api', API, '--permission', 'invoices:read', '--permission', 'invoices:write']);
  user = await registerUser(server.databaseUrl, 'api-user@example.com', ['--role', 'billing-admin']);
  rp = await registerRelyingParty(server);
  demo = await startDemoApi(server.issuer, API);
});
afterAll(async () => {
  await demo.close();
  await server.close();
});

const call = (url: string, token?: string, init: RequestInit = {}) =>
  fetch(url, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });

async function apiTokenFor(scope: string) {
  const request = await rp.authorizationRequest(`openid ${scope}`, { resource: API });
  const callback = await rp.authorize(rp.newBrowser(), request, 'api-user@example.com', TEST_PASSWORD);
  return oidc.authorizationCodeGrant(rp.config, callback, { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state }, { resource: API });
}

describe('API access tokens', () => {
  it('issues an RFC 9068 JWT for an API named with the resource parameter', async () => {
    const tokens = await apiTokenFor('invoices:read');
    const header = decodeProtectedHeader(tokens.access_token);
    expect(header.typ).toBe('at+jwt');
    expect(header.alg).toBe('RS256');
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({ iss: server.issuer, sub: user.id, aud: API, client_id: rp.config.clientMetadata().client_id, scope: 'invoices:read', roles: ['billing-admin'] });
    for (const claim of ['exp', 'iat', 'jti']) expect(claims[claim]).toBeDefined();
    expect(claims.exp! - claims.iat!).toBe(600);
  });

  it('lets the demo API through with the right scope and refuses the wrong one with 403', async () => {
    const tokens = await apiTokenFor('invoices:read');
    const ok = await call(`${demo.url}/invoices`, tokens.access_token);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ sub: user.id, scope: 'invoices:read' });
    const plain = await call(`${demo.url}/plain`, tokens.access_token);
    expect(plain.status).toBe(200);

    const write = await call(`${demo.url}/invoices`, tokens.access_token, { method: 'POST' });
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toMatch(/^Bearer .*error="insufficient_scope".*scope="invoices:write"/);
    expect(await write.json()).toMatchObject({ error: 'insufficient_scope' });

    expect((await call(`${demo.url}/admin`, tokens.access_token)).status).toBe(200);
  });

  it('answers a missing, malformed, forged or foreign token with 401 and a Bearer challenge', async () => {
    const none = await call(`${demo.url}/invoices`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="api"');

    const garbage = await call(`${demo.url}/invoices`, 'not.a.jwt');
    expect(garbage.status).toBe(401);
    expect(garbage.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

    const malformed = await fetch(`${demo.url}/invoices`, { headers: { authorization: 'Basic abc def' } });
    expect(malformed.status).toBe(400);

    const tokens = await apiTokenFor('invoices:read');
    const [h, p] = tokens.access_token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, scope: 'invoices:read invoices:write' })).toString('base64url')}.${tokens.access_token.split('.')[2]}`;
    expect((await call(`${demo.url}/invoices`, tampered, { method: 'POST' })).status).toBe(401);

    // A userinfo token is not an API token.
    const plainSignIn = await rp.signIn('api-user@example.com', TEST_PASSWORD);
    expect((await call(`${demo.url}/invoices`, plainSignIn.access_token)).status).toBe(401);
  });

  it('lists the API permissions on the consent page', async () => {
    await admin(server.databaseUrl, ['api', 'create', '--identifier', 'https://words.example.com', '--name', 'Words']);
    await admin(server.databaseUrl, ['api', 'add-scope', 'https://words.example.com', '--scope', 'words:read', '--description', 'Read your words']);
    await admin(server.databaseUrl, ['api', 'add-scope', 'https://words.example.com', '--scope', 'words:write']);
    await admin(server.databaseUrl, ['role', 'grant', 'billing-admin', '--api', 'https://words.example.com', '--permission', 'words:read', '--permission', 'words:write']);
    const request = await rp.authorizationRequest('openid words:read words:write', { resource: 'https://words.example.com' });
    const browser = rp.newBrowser();
    const login = asPage(await browser.request(request.url));
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'api-user@example.com', password: TEST_PASSWORD }));
    const items = consent.doc.querySelectorAll('.scopes li').map((li) => li.text);
    expect(items).toEqual(expect.arrayContaining(['Words: Read your words', 'Words: words:write']));
  });

  it('issues an opaque token good for userinfo when no resource is named', async () => {
    const tokens = await rp.signIn('api-user@example.com', TEST_PASSWORD, 'openid email');
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
    expect(info.email).toBe('api-user@example.com');
  });

  it('refuses an unregistered resource with invalid_target', async () => {
    const request = await rp.authorizationRequest('openid', { resource: 'https://unknown.example.com' });
    const result = await rp.newBrowser().request(request.url);
    expect('callback' in result).toBe(true);
    expect((result as { callback: URL }).callback.searchParams.get('error')).toBe('invalid_target');
  });

  it('uses the API\'s own access-token lifetime', async () => {
    await admin(server.databaseUrl, ['api', 'create', '--identifier', 'https://short.example.com', '--name', 'Short', '--scope', 'short:read', '--access-token-ttl', '120']);
    await admin(server.databaseUrl, ['role', 'grant', 'billing-admin', '--api', 'https://short.example.com', '--permission', 'short:read']);
    const request = await rp.authorizationRequest('openid short:read', { resource: 'https://short.example.com' });
    const callback = await rp.authorize(rp.newBrowser(), request, 'api-user@example.com', TEST_PASSWORD);
    const tokens = await oidc.authorizationCodeGrant(rp.config, callback, { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state }, { resource: 'https://short.example.com' });
    const claims = decodeJwt(tokens.access_token);
    expect(claims.exp! - claims.iat!).toBe(120);
    expect(tokens.expires_in).toBeLessThanOrEqual(120);
  });
});

describe('APIs with ES256 tokens', () => {
  it('get access tokens signed with their own algorithm, which the resource server verifies', async () => {
    const FAST = 'https://fast.example.com';
    expect((await admin(server.databaseUrl, ['keys', 'rotate', '--alg', 'ES256', '--lead-time', '0'])).code).toBe(0);
    await server.refreshKeys();
    const created = await admin(server.databaseUrl, ['api', 'create', '--identifier', FAST, '--name', 'Fast', '--scope', 'fast:read', '--token-signing-alg', 'ES256']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/token signing alg: ES256/);
    const service = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Fast job', '--scope', 'fast:read', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const config = await oidc.discovery(new URL(server.issuer), service.clientId, service.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const fast = await oidc.clientCredentialsGrant(config, { scope: 'fast:read', resource: FAST });
    expect(decodeProtectedHeader(fast.access_token).alg).toBe('ES256');
    const verified = await createTokenVerifier({ issuer: server.issuer, audience: FAST }).authenticate({
      method: 'GET',
      url: `${FAST}/ledger`,
      headers: { authorization: `Bearer ${fast.access_token}` },
    });
    expect(verified).toMatchObject({ sub: service.clientId, scope: 'fast:read' });
    // Other APIs keep RS256.
    const other = await oidc.clientCredentialsGrant(config, { scope: 'invoices:read', resource: API });
    expect(decodeProtectedHeader(other.access_token).alg).toBe('RS256');
  });
});

describe('services (client credentials)', () => {
  it('refuses client_credentials to a client that authenticates with nothing, however its row was written', async () => {
    const service = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Edited job', '--scope', 'invoices:read', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const ask = () =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: service.clientId, resource: API, scope: 'invoices:read' }),
      });
    // Without its secret it is refused; then the row is edited to need none.
    expect((await ask()).status).toBe(401);
    await server.database.db.updateTable('clients').set({ token_endpoint_auth_method: 'none' }).where('client_id', '=', service.clientId).execute();
    const refused = await ask();
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  });

  it('gets a JWT for an API with a client secret, limited to the scopes it was given', async () => {
    const created = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Billing job', '--scope', 'invoices:read', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { clientId, clientSecret } = created.json<{ clientId: string; clientSecret: string }>();
    const config = await oidc.discovery(new URL(server.issuer), clientId, clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'invoices:read invoices:write', resource: API });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({ aud: API, client_id: clientId, sub: clientId, scope: 'invoices:read' });
    expect((await call(`${demo.url}/invoices`, tokens.access_token)).status).toBe(200);
    expect((await call(`${demo.url}/invoices`, tokens.access_token, { method: 'POST' })).status).toBe(403);
  });

  it('counts a scope registered by name only while one API defines it', async () => {
    const [ledger, rival] = ['https://books.example.com', 'https://rival-books.example.com'];
    expect((await admin(server.databaseUrl, ['api', 'create', '--identifier', ledger, '--name', 'Ledger', '--scope', 'ledger:read'])).code).toBe(0);
    const service = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Ledger job', '--scope', 'ledger:read', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const config = await oidc.discovery(new URL(server.issuer), service.clientId, service.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const scopeFor = (resource: string) =>
      oidc.clientCredentialsGrant(config, { scope: 'ledger:read', resource }).then(
        (tokens) => decodeJwt(tokens.access_token).scope ?? '',
        (err: { error?: string }) => err.error,
      );
    expect(await scopeFor(ledger)).toBe('ledger:read');
    // Another API defines the same name: the registration can no longer say which is meant.
    expect((await admin(server.databaseUrl, ['api', 'create', '--identifier', rival, '--name', 'Rival', '--scope', 'ledger:read'])).code).toBe(0);
    expect(await scopeFor(rival)).not.toBe('ledger:read');
    expect(await scopeFor(ledger)).not.toBe('ledger:read');
    const refused = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Another job', '--scope', 'ledger:read']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/belongs to more than one API; give it to the service through a role/);
    // A role says which API: that still works.
    await admin(server.databaseUrl, ['role', 'create', 'ledger-reader']);
    await admin(server.databaseUrl, ['role', 'grant', 'ledger-reader', '--api', ledger, '--permission', 'ledger:read']);
    expect((await admin(server.databaseUrl, ['role', 'assign', 'ledger-reader', '--client', service.clientId])).code).toBe(0);
    expect(await scopeFor(ledger)).toBe('ledger:read');
    expect(await scopeFor(rival)).not.toBe('ledger:read');
  });

  it('authenticates with private_key_jwt using the keys it registered', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'svc-1', alg: 'ES256', use: 'sig' };
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-jwks-')), 'jwks.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const created = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Signed job', '--scope', 'invoices:write', '--jwks-file', file, '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { clientId, clientSecret, tokenEndpointAuthMethod } = created.json<{ clientId: string; clientSecret: null; tokenEndpointAuthMethod: string }>();
    expect(clientSecret).toBeNull();
    expect(tokenEndpointAuthMethod).toBe('private_key_jwt');

    const key = { key: await crypto.webcrypto.subtle.importKey('jwk', privateKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), kid: 'svc-1' };
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt(key), { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'invoices:write', resource: API });
    expect(decodeJwt(tokens.access_token).scope).toBe('invoices:write');

    const { privateKey: otherKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const wrong = { key: await crypto.webcrypto.subtle.importKey('jwk', otherKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), kid: 'svc-1' };
    const impostor = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt(wrong), { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(impostor, { scope: 'invoices:write', resource: API })).rejects.toThrow();
  });

  it('authenticates with client_secret_jwt when the client asks for it', async () => {
    const created = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'HMAC job', '--scope', 'invoices:read', '--auth-method', 'client_secret_jwt', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { clientId, clientSecret } = created.json<{ clientId: string; clientSecret: string }>();
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.ClientSecretJwt(clientSecret), { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'invoices:read', resource: API });
    expect(decodeJwt(tokens.access_token).client_id).toBe(clientId);
    // The secret is kept sealed, never in plain text.
    const row = await server.database.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(clientSecret);
    expect(row.secret_sealed).toMatch(/^v1\./);
    // Basic authentication is not what it registered, so it is refused.
    const basic = await oidc.discovery(new URL(server.issuer), clientId, clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(basic, { scope: 'invoices:read', resource: API })).rejects.toThrow();
  });

  it('refuses bad key registrations and writes nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-jwks-'));
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateFile = path.join(dir, 'private.json');
    fs.writeFileSync(privateFile, JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }));
    const notJson = path.join(dir, 'bad.json');
    fs.writeFileSync(notJson, '{nope');
    const before = (await admin(server.databaseUrl, ['client', 'list', '--json'])).json<unknown[]>().length;
    for (const [args, message] of [
      [['--jwks-file', privateFile], /private key material/],
      [['--jwks-file', notJson], /not valid JSON/],
      [['--jwks-file', path.join(dir, 'missing.json')], /cannot read/],
      [['--auth-method', 'private_key_jwt'], /needs the client's public keys/],
      [['--auth-method', 'tls_client_auth'], /unknown --auth-method/],
      [['--scope', 'invoices:delete'], /unknown scope "invoices:delete"/],
      [['--redirect-uri', REDIRECT_URI], /only for clients with the authorization_code grant/],
    ] as const) {
      const r = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Bad', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    expect((await admin(server.databaseUrl, ['client', 'list', '--json'])).json<unknown[]>()).toHaveLength(before);
  });
});

describe('admin: APIs', () => {
  it('lists, shows, adds and removes scopes, and deletes', async () => {
    const id = 'https://ledger.example.com';
    expect((await admin(server.databaseUrl, ['api', 'create', '--identifier', id, '--name', 'Ledger'])).code).toBe(0);
    expect((await admin(server.databaseUrl, ['api', 'add-scope', id, '--scope', 'ledger:read', '--description', 'Read the ledger'])).code).toBe(0);
    expect((await admin(server.databaseUrl, ['api', 'add-scope', id, '--scope', 'ledger:close'])).code).toBe(0);
    const shown = await admin(server.databaseUrl, ['api', 'show', id, '--json']);
    expect(shown.json()).toMatchObject({ identifier: id, name: 'Ledger', scopes: [{ name: 'ledger:close' }, { name: 'ledger:read', description: 'Read the ledger' }] });
    expect((await admin(server.databaseUrl, ['api', 'remove-scope', id, '--scope', 'ledger:close'])).code).toBe(0);
    expect((await admin(server.databaseUrl, ['api', 'show', id, '--json'])).json<{ scopes: unknown[] }>().scopes).toHaveLength(1);
    const listed = await admin(server.databaseUrl, ['api', 'list', '--json']);
    expect(listed.json<{ identifier: string }[]>().map((a) => a.identifier)).toContain(id);
    expect((await admin(server.databaseUrl, ['api', 'delete', id])).code).toBe(0);
    expect((await admin(server.databaseUrl, ['api', 'show', id])).code).toBe(1);
  });

  it('refuses bad API input with one line and writes nothing', async () => {
    const before = (await admin(server.databaseUrl, ['api', 'list', '--json'])).json<unknown[]>();
    for (const [args, message] of [
      [['api', 'create', '--identifier', API, '--name', 'Again'], /already exists/],
      [['api', 'create', '--identifier', 'invoices', '--name', 'X'], /absolute URL/],
      [['api', 'create', '--identifier', 'https://x.example.com#f', '--name', 'X'], /fragment/],
      [['api', 'create', '--identifier', 'https://x.example.com'], /--name is required/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--scope', 'bad scope'], /must be 1-100/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--scope', 'openid'], /reserved for OpenID Connect/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--access-token-ttl', '5'], /from 30 to 86400/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--access-token-ttl', 'ten'], /whole number/],
      [['api', 'add-scope', API, '--scope', 'invoices:read'], /already has scope/],
      [['api', 'add-scope', 'https://nope.example.com', '--scope', 'a'], /no API with identifier/],
      [['api', 'remove-scope', API, '--scope', 'invoices:none'], /has no scope/],
      [['api', 'add-scope', API], /--scope SCOPE is required/],
      [['api', 'delete', 'https://nope.example.com'], /no API with identifier/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--token-signing-alg', 'HS256'], /--token-signing-alg must be one of RS256, ES256, EdDSA/],
      [['api', 'create', '--identifier', 'https://x.example.com', '--name', 'X', '--token-signing-alg', 'EdDSA'], /no EdDSA signing key: add one with keys rotate --alg EdDSA/],
    ] as const) {
      const r = await admin(server.databaseUrl, [...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect((await admin(server.databaseUrl, ['api', 'list', '--json'])).json()).toEqual(before);
  });
});
