import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPage } from './helpers/browser.ts';

let server: RunningServer;
let rp: RelyingParty;
let user: { id: string; email: string };

beforeAll(async () => {
  server = await startLatchkey();
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await admin(server.databaseUrl, ['role', 'create', 'billing']);
  user = await registerUser(server.databaseUrl, 'ada@example.com', ['--name', 'Ada Lovelace', '--role', 'billing', '--email-verified']);
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

describe('signing in from a relying party', () => {
  it('publishes discovery and a JWKS with an RS256 key', async () => {
    const metadata = rp.config.serverMetadata();
    expect(metadata.issuer).toBe(server.issuer);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access', 'roles']));
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    const jwks = (await (await fetch(metadata.jwks_uri!)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.keys[0]?.d).toBeUndefined();
  });

  it('signs in with code + PKCE + nonce and returns a validated ID token', async () => {
    const tokens = await rp.signIn('ada@example.com', TEST_PASSWORD, 'openid profile email roles');
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      iss: server.issuer,
      sub: user.id,
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
      roles: ['billing'],
    });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeUndefined();
  });

  it('serves userinfo for the access token, limited to the granted scopes', async () => {
    const tokens = await rp.signIn('ada@example.com', TEST_PASSWORD, 'openid email');
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
    expect(info).toMatchObject({ sub: user.id, email: 'ada@example.com', email_verified: true });
    expect(info.name).toBeUndefined();
    expect(info.roles).toBeUndefined();
  });

  it('issues a refresh token for offline_access and refreshes with it', async () => {
    const tokens = await rp.signIn('ada@example.com', TEST_PASSWORD, 'openid email offline_access');
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()?.sub).toBe(user.id);
    const info = await oidc.fetchUserInfo(rp.config, refreshed.access_token, user.id);
    expect(info.email).toBe('ada@example.com');
  });

  it('authenticates the client with client_secret_post as well as client_secret_basic', async () => {
    const app = await registerApp(server.databaseUrl, REDIRECT_URI);
    const postRp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret, { auth: 'post' });
    const tokens = await postRp.signIn('ada@example.com', TEST_PASSWORD);
    expect(tokens.claims()?.sub).toBe(user.id);
  });

  it('signs in a public client with PKCE and no secret', async () => {
    const app = await registerApp(server.databaseUrl, REDIRECT_URI, ['--public']);
    expect(app.clientSecret).toBeNull();
    const publicRp = await RelyingParty.discover(server.issuer, app.clientId, null);
    const tokens = await publicRp.signIn('ada@example.com', TEST_PASSWORD, 'openid offline_access');
    expect(tokens.claims()?.sub).toBe(user.id);
    expect(tokens.refresh_token).toBeTruthy();
  });

  it('shows the app name and each requested scope in plain words on the consent page', async () => {
    const request = await rp.authorizationRequest('openid profile email roles offline_access');
    const browser = rp.newBrowser();
    const login = asPage(await browser.request(request.url));
    expect(login.doc.querySelector('h1')?.text).toBe('Sign in');
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'ada@example.com', password: TEST_PASSWORD }));
    expect(consent.doc.querySelector('h1')?.text).toBe('Allow access?');
    expect(consent.html).toContain('Test App');
    const items = consent.doc.querySelectorAll('.scopes li').map((li) => li.text);
    expect(items).toEqual(expect.arrayContaining(['See your name', 'See your email address', 'See the roles you have been given']));
    expect(items.some((i) => i.startsWith('Stay signed in'))).toBe(true);
    expect(consent.doc.querySelector('form[action$="/abort"] button')?.text).toBe('Deny');
  });

  it('sends the user back with access_denied when they deny consent', async () => {
    const request = await rp.authorizationRequest();
    const browser = rp.newBrowser();
    const login = asPage(await browser.request(request.url));
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'ada@example.com', password: TEST_PASSWORD }));
    const landing = await browser.submit(consent, /\/abort$/);
    expect('callback' in landing).toBe(true);
    const callback = (landing as { callback: URL }).callback;
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(request.state);
  });

  it('skips the login form while the browser session lasts', async () => {
    const browser = rp.newBrowser();
    const first = await rp.authorizationRequest();
    await rp.authorize(browser, first, 'ada@example.com', TEST_PASSWORD);
    const second = await rp.authorizationRequest();
    const result = await browser.request(second.url);
    expect('callback' in result).toBe(true);
    const tokens = await rp.exchange((result as { callback: URL }).callback, second);
    expect(tokens.claims()?.sub).toBe(user.id);
  });
});
