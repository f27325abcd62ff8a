import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { RelyingParty, registerRelyingParty } from './helpers/relying-party.ts';
import { asPage } from './helpers/browser.ts';
import { startDemoApi, type DemoApi } from './helpers/demo-api.ts';

const API = 'https://api.example.com';
let server: RunningServer;
let demo: DemoApi;
let rp: RelyingParty;
let run: (...argv: string[]) => ReturnType<typeof admin>;

beforeAll(async () => {
  server = await startLatchkey();
  run = (...argv) => admin(server.databaseUrl, argv);
  await run('api', 'create', '--identifier', API, '--name', 'Invoices', '--scope', 'invoices:read', '--scope', 'invoices:write');
  await run('role', 'create', 'billing-admin', '--description', 'Runs billing');
  await run('role', 'grant', 'billing-admin', '--api', API, '--permission', 'invoices:read', '--permission', 'invoices:write');
  await run('role', 'create', 'billing-reader');
  await run('role', 'grant', 'billing-reader', '--api', API, '--permission', 'invoices:read');
  await registerUser(server.databaseUrl, 'boss@example.com', ['--role', 'billing-admin']);
  await registerUser(server.databaseUrl, 'clerk@example.com', ['--role', 'billing-reader']);
  await registerUser(server.databaseUrl, 'visitor@example.com');
  rp = await registerRelyingParty(server);
  demo = await startDemoApi(server.issuer, API);
});
afterAll(async () => {
  await demo.close();
  await server.close();
});

/** Signs in asking for API scopes; returns the consent page's list and the tokens. */
async function signInForApi(email: string, scope: string) {
  const request = await rp.authorizationRequest(scope, { resource: API });
  const browser = rp.newBrowser();
  const login = asPage(await browser.request(request.url));
  let result = await browser.submit(login, /\/login$/, { email, password: TEST_PASSWORD });
  let consentItems: string[] = [];
  if (!('callback' in result)) {
    consentItems = asPage(result).doc.querySelectorAll('.scopes li').map((li) => li.text);
    result = await browser.submit(asPage(result), /\/confirm$/);
  }
  if (!('callback' in result)) throw new Error('no callback');
  const tokens = await oidc.authorizationCodeGrant(
    rp.config,
    result.callback,
    { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state },
    { resource: API },
  );
  return { consentItems, tokens, claims: decodeJwt(tokens.access_token) };
}

const scopesOf = (claims: Record<string, unknown>) => String(claims.scope ?? '').split(' ').filter(Boolean).sort();
const get = (path: string, token: string, method = 'GET') => fetch(`${demo.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

describe('permissions come from roles', () => {
  it('gives a person exactly the requested permissions their roles grant', async () => {
    const boss = await signInForApi('boss@example.com', 'openid roles invoices:read invoices:write');
    expect(scopesOf(boss.claims)).toEqual(['invoices:read', 'invoices:write']);
    expect(boss.claims.roles).toEqual(['billing-admin']);
    expect(boss.tokens.claims()?.roles).toEqual(['billing-admin']);

    const clerk = await signInForApi('clerk@example.com', 'openid roles invoices:read invoices:write');
    expect(scopesOf(clerk.claims)).toEqual(['invoices:read']);
    // The consent page lists only what will be granted.
    expect(clerk.consentItems).toContain('Invoices: invoices:read');
    expect(clerk.consentItems).not.toContain('Invoices: invoices:write');

    const visitor = await signInForApi('visitor@example.com', 'openid roles invoices:read invoices:write');
    expect(scopesOf(visitor.claims)).toEqual([]);
    expect(visitor.claims.roles).toEqual([]);
    expect(visitor.tokens.claims()?.roles).toEqual([]);
  });

  it('lets the right token through the demo API and refuses the wrong one with 403', async () => {
    const boss = await signInForApi('boss@example.com', 'openid invoices:read invoices:write');
    const clerk = await signInForApi('clerk@example.com', 'openid invoices:read invoices:write');
    expect((await get('/invoices', boss.tokens.access_token, 'POST')).status).toBe(201);
    expect((await get('/admin', boss.tokens.access_token)).status).toBe(200);
    expect((await get('/invoices', clerk.tokens.access_token)).status).toBe(200);
    const write = await get('/invoices', clerk.tokens.access_token, 'POST');
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    const adminOnly = await get('/admin', clerk.tokens.access_token);
    expect(adminOnly.status).toBe(403);
  });

  it('takes a revoked role out of the next refreshed token and out of userinfo', async () => {
    await registerUser(server.databaseUrl, 'mover@example.com', ['--role', 'billing-admin']);
    const first = await signInForApi('mover@example.com', 'openid roles offline_access invoices:read invoices:write');
    expect(scopesOf(first.claims)).toEqual(['invoices:read', 'invoices:write']);
    expect((await oidc.fetchUserInfo(rp.config, (await oidc.refreshTokenGrant(rp.config, first.tokens.refresh_token!)).access_token, oidc.skipSubjectCheck)).roles).toEqual(['billing-admin']);

    expect((await run('role', 'revoke', 'billing-admin', '--user', 'mover@example.com')).code).toBe(0);
    expect((await run('role', 'assign', 'billing-reader', '--user', 'mover@example.com')).code).toBe(0);
    const refreshed = await oidc.refreshTokenGrant(rp.config, first.tokens.refresh_token!, { resource: API });
    const claims = decodeJwt(refreshed.access_token);
    expect(scopesOf(claims)).toEqual(['invoices:read']);
    expect(claims.roles).toEqual(['billing-reader']);
    const userinfoToken = (await oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!)).access_token;
    expect((await oidc.fetchUserInfo(rp.config, userinfoToken, oidc.skipSubjectCheck)).roles).toEqual(['billing-reader']);
  });

  it('removes a deleted role everywhere', async () => {
    await run('role', 'create', 'temporary');
    await run('role', 'grant', 'temporary', '--api', API, '--permission', 'invoices:write');
    await registerUser(server.databaseUrl, 'temp@example.com', ['--role', 'temporary']);
    expect(scopesOf((await signInForApi('temp@example.com', 'openid invoices:write')).claims)).toEqual(['invoices:write']);
    expect((await run('role', 'delete', 'temporary')).code).toBe(0);
    const after = await signInForApi('temp@example.com', 'openid roles invoices:write');
    expect(scopesOf(after.claims)).toEqual([]);
    expect(after.tokens.claims()?.roles).toEqual([]);
    expect((await run('user', 'show', 'temp@example.com', '--json')).json().roles).toEqual([]);
  });

  it('drops a permission from roles when the API loses that scope', async () => {
    await run('api', 'add-scope', API, '--scope', 'invoices:export');
    await run('role', 'grant', 'billing-admin', '--api', API, '--permission', 'invoices:export');
    expect((await run('role', 'show', 'billing-admin', '--json')).json().permissions).toContainEqual({ api: API, scope: 'invoices:export' });
    await run('api', 'remove-scope', API, '--scope', 'invoices:export');
    expect((await run('role', 'show', 'billing-admin', '--json')).json().permissions).not.toContainEqual({ api: API, scope: 'invoices:export' });
  });
});

describe('service clients', () => {
  it('get the permissions of their roles through client_credentials', async () => {
    const created = (await run('client', 'create', '--service', '--name', 'Nightly billing', '--json')).json<{ clientId: string; clientSecret: string }>();
    const config = await oidc.discovery(new URL(server.issuer), created.clientId, created.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const grant = async () => decodeJwt((await oidc.clientCredentialsGrant(config, { scope: 'invoices:read invoices:write', resource: API })).access_token);

    expect(scopesOf(await grant())).toEqual([]);
    expect((await run('role', 'assign', 'billing-reader', '--client', created.clientId)).code).toBe(0);
    const withRole = await grant();
    expect(scopesOf(withRole)).toEqual(['invoices:read']);
    expect(withRole.roles).toEqual(['billing-reader']);

    const shown = (await run('client', 'show', created.clientId, '--json')).json();
    expect(shown.roles).toEqual(['billing-reader']);
    expect(shown.permissions).toEqual([{ api: API, scope: 'invoices:read', role: 'billing-reader' }]);

    expect((await run('role', 'revoke', 'billing-reader', '--client', created.clientId)).code).toBe(0);
    expect(scopesOf(await grant())).toEqual([]);
  });
});

describe('seeing who has what', () => {
  it('shows a role\'s permissions and members, an API\'s grants, and a person\'s permissions by role', async () => {
    const role = (await run('role', 'show', 'billing-reader', '--json')).json();
    expect(role.permissions).toEqual([{ api: API, scope: 'invoices:read' }]);
    expect(role.members.users).toEqual(expect.arrayContaining(['clerk@example.com']));
    const api = (await run('api', 'show', API, '--json')).json<{ scopes: { name: string; roles: string[] }[] }>();
    expect(api.scopes.find((s) => s.name === 'invoices:write')?.roles).toEqual(['billing-admin']);
    expect(api.scopes.find((s) => s.name === 'invoices:read')?.roles).toEqual(['billing-admin', 'billing-reader']);
    const boss = await run('user', 'show', 'boss@example.com');
    expect(boss.stdout).toContain(`${API}  invoices:write  (through billing-admin)`);
  });

  it('has a built-in latchkey:admin role that cannot be deleted', async () => {
    const roles = (await run('role', 'list', '--json')).json<{ name: string }[]>();
    expect(roles.map((r) => r.name)).toContain('latchkey:admin');
    const refused = await run('role', 'delete', 'latchkey:admin');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/built in and cannot be deleted/);
  });
});

describe('bad input to the role commands', () => {
  it('errors cleanly and writes nothing', async () => {
    const snapshot = async () => ({
      roles: (await run('role', 'list', '--json')).stdout,
      admin: (await run('role', 'show', 'billing-admin', '--json')).stdout,
    });
    const before = await snapshot();
    for (const [argv, message] of [
      [['role', 'grant', 'ghost', '--api', API, '--permission', 'invoices:read'], /no role named ghost/],
      [['role', 'grant', 'billing-admin', '--api', 'https://nope.example.com', '--permission', 'x'], /no API with identifier/],
      [['role', 'grant', 'billing-admin', '--api', API, '--permission', 'invoices:read', '--permission', 'invoices:fly'], /has no scope invoices:fly/],
      [['role', 'grant', 'billing-admin', '--permission', 'invoices:read'], /--api IDENTIFIER is required/],
      [['role', 'grant', 'billing-admin', '--api', API], /--permission SCOPE is required/],
      [['role', 'ungrant', 'billing-reader', '--api', API, '--permission', 'invoices:write'], /does not grant invoices:write/],
      [['role', 'create', 'billing-admin'], /already exists/],
      [['role', 'show', 'ghost'], /no role named ghost/],
      [['role', 'delete', 'ghost'], /no role named ghost/],
      [['role', 'assign', 'billing-admin', '--client', 'no-such-client'], /no client with id/],
      [['role', 'assign', 'billing-admin', '--user', 'a@example.com', '--client', 'x'], /not both/],
    ] as const) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await snapshot()).toEqual(before);
  });
});
