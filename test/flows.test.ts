import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asLanding, asPage, Browser } from './helpers/browser.ts';
import { startDemoApi, type DemoApi } from './helpers/demo-api.ts';

const API = 'https://api.example.com';
let server: RunningServer;
let demo: DemoApi;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey({ env: { ALLOW_PRIVATE_NETWORK_FETCH: 'true' } });
  await admin(server.databaseUrl, ['api', 'create', '--identifier', API, '--name', 'Invoices', '--scope', 'invoices:read']);
  await admin(server.databaseUrl, ['role', 'create', 'reader']);
  await admin(server.databaseUrl, ['role', 'grant', 'reader', '--api', API, '--permission', 'invoices:read']);
  await registerUser(server.databaseUrl, 'flows@example.com', ['--role', 'reader']);
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
  demo = await startDemoApi(server.issuer, API);
});
afterAll(async () => {
  await demo.close();
  await server.close();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('discovery', () => {
  it('advertises the device flow, PAR, DPoP, introspection, revocation and logout', () => {
    const m = rp.config.serverMetadata();
    expect(m.device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
    expect(m.pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
    expect(m.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
    expect(m.introspection_endpoint).toBe(`${server.issuer}/token/introspection`);
    expect(m.revocation_endpoint).toBe(`${server.issuer}/token/revocation`);
    expect(m.end_session_endpoint).toBe(`${server.issuer}/session/end`);
    expect(m.backchannel_logout_supported).toBe(true);
    expect(m.grant_types_supported).toEqual(
      expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']),
    );
  });
});

interface Listener {
  uri: string;
  tokens: string[];
  next: Promise<void>;
  close(): void;
}

async function startLogoutListener(): Promise<Listener> {
  const tokens: string[] = [];
  let arrived!: () => void;
  const next = new Promise<void>((resolve) => (arrived = resolve));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(200).end();
      arrived();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`,
    tokens,
    next,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Signs in through a browser, then signs out at Latchkey and confirms. */
async function signInAndOut(on: RunningServer, bcRp: RelyingParty) {
  const browser = bcRp.newBrowser();
  const request = await bcRp.authorizationRequest();
  const tokens = await bcRp.exchange(await bcRp.authorize(browser, request, 'flows@example.com', TEST_PASSWORD), request);
  const confirm = asPage(await browser.request(`${on.issuer}/session/end`));
  await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
  return tokens;
}

describe('back-channel logout', () => {
  it('sends a signed logout token to the app when the user signs out', async () => {
    const listener = await startLogoutListener();
    try {
      const app = await registerApp(server.databaseUrl, REDIRECT_URI, ['--backchannel-logout-uri', listener.uri]);
      const bcRp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
      const tokens = await signInAndOut(server, bcRp);
      await Promise.race([listener.next, new Promise((_, reject) => setTimeout(() => reject(new Error(`no logout token: ${JSON.stringify(server.logs)}`)), 5000))]);

      const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
      const { payload, protectedHeader } = await jwtVerify(listener.tokens[0]!, jwks, { issuer: server.issuer, audience: app.clientId, typ: 'logout+jwt' });
      expect(protectedHeader.alg).toBe('RS256');
      expect(payload.sub).toBe(tokens.claims()!.sub);
      expect(payload.sid).toBe(tokens.claims()!.sid);
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(payload.nonce).toBeUndefined();
    } finally {
      listener.close();
    }
  });

  it('tells the app when an admin signs the person out, and says which apps could not be told', async () => {
    const listener = await startLogoutListener();
    const gone = await startLogoutListener();
    gone.close();
    try {
      await registerUser(server.databaseUrl, 'signed-out@example.com');
      const app = await registerApp(server.databaseUrl, REDIRECT_URI, ['--backchannel-logout-uri', listener.uri]);
      const unreachable = await registerApp(server.databaseUrl, REDIRECT_URI, ['--backchannel-logout-uri', gone.uri]);
      const bcRp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
      const otherRp = await RelyingParty.discover(server.issuer, unreachable.clientId, unreachable.clientSecret);
      // One browser, one session, two apps signed in to.
      const browser = bcRp.newBrowser();
      const request = await bcRp.authorizationRequest();
      const tokens = await bcRp.exchange(await bcRp.authorize(browser, request, 'signed-out@example.com', TEST_PASSWORD), request);
      // Already signed in: the second app only asks for consent.
      const second = await otherRp.authorizationRequest();
      const consent = asPage(await browser.request(second.url));
      await otherRp.exchange(asLanding(await browser.submit(consent, /\/confirm$/)), second);

      // The admin script runs with the servers' settings: their issuer, and their fetch policy.
      const result = await admin(server.databaseUrl, ['user', 'sign-out', 'signed-out@example.com', '--json'], '', { ISSUER: server.issuer, ALLOW_PRIVATE_NETWORK_FETCH: 'true' });
      expect(result.code, result.stderr).toBe(0);
      const { notified, revoked } = result.json<{ revoked: number; notified: { clientId: string; error?: string }[] }>();
      expect(revoked).toBeGreaterThan(0);
      expect(notified).toContainEqual({ clientId: app.clientId });
      expect(notified).toContainEqual({ clientId: unreachable.clientId, error: expect.any(String) });

      expect(listener.tokens).toHaveLength(1);
      const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
      const { payload } = await jwtVerify(listener.tokens[0]!, jwks, { issuer: server.issuer, audience: app.clientId, typ: 'logout+jwt' });
      expect(payload.sub).toBe(tokens.claims()!.sub);
      expect(payload.sid).toBe(tokens.claims()!.sid);
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    } finally {
      listener.close();
    }
  });

  it('does not call loopback or private addresses unless allowed (SSRF protection)', async () => {
    const guarded = await startLatchkey();
    const listener = await startLogoutListener();
    try {
      await registerUser(guarded.databaseUrl, 'flows@example.com');
      const app = await registerApp(guarded.databaseUrl, REDIRECT_URI, ['--backchannel-logout-uri', listener.uri]);
      await signInAndOut(guarded, await RelyingParty.discover(guarded.issuer, app.clientId, app.clientSecret));
      expect(guarded.logs).toContainEqual(expect.objectContaining({ event: 'backchannel_logout_failed', clientId: app.clientId }));
      expect(listener.tokens).toEqual([]);
    } finally {
      listener.close();
      await guarded.close();
    }
  });
});

describe('private_key_jwt with keys published at a URL', () => {
  it('fetches the service\'s JWKS from its jwks_uri', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const published = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'uri-1', alg: 'ES256', use: 'sig' }] });
    const keys = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(published));
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUri = `http://127.0.0.1:${(keys.address() as AddressInfo).port}/jwks.json`;
      const created = await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Keyed job', '--scope', 'invoices:read', '--jwks-uri', jwksUri, '--json']);
      expect(created.code, created.stderr).toBe(0);
      const { clientId } = created.json<{ clientId: string }>();
      const key = { key: await crypto.webcrypto.subtle.importKey('jwk', privateKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), kid: 'uri-1' };
      const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt(key), { execute: [oidc.allowInsecureRequests] });
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'invoices:read', resource: API });
      expect(tokens.access_token).toBeTruthy();
    } finally {
      keys.closeAllConnections();
      keys.close();
    }
  });
});

describe('device authorization grant', () => {
  it('signs a device in through the code entry, login, consent and confirmation pages', async () => {
    const created = await admin(server.databaseUrl, ['client', 'create', '--name', 'Living-room TV', '--public', '--grant-type', 'device_code', '--grant-type', 'refresh_token', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { clientId } = created.json<{ clientId: string }>();
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
    expect(device.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);

    const pending = oidc.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code });
    await expect(pending).rejects.toMatchObject({ error: 'authorization_pending' });

    const browser = new Browser('http://127.0.0.1:1/');
    const entry = asPage(await browser.request(device.verification_uri));
    expect(entry.doc.querySelector('label[for=user_code]')?.text).toBe('Code');
    expect(entry.html).not.toMatch(/\son[a-z]+=/i);
    const wrong = asPage(await browser.submit(entry, /\/device$/, { user_code: 'BBBB-BBBB' }));
    expect(wrong.doc.querySelector('[role=alert]')?.text).toMatch(/not correct/);
    const confirm = asPage(await browser.submit(wrong, /\/device$/, { user_code: device.user_code }));
    expect(confirm.html).toContain('Living-room TV');
    expect(confirm.doc.querySelector('.user-code')?.text).toBe(device.user_code);
    const login = asPage(await browser.submit(confirm, /\/device$/));
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'flows@example.com', password: TEST_PASSWORD }));
    const done = asPage(await browser.submit(consent, /\/confirm$/));
    expect(done.doc.querySelector('h1')?.text).toBe('Device connected');

    const tokens = await oidc.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code });
    expect(tokens.claims()?.email).toBe('flows@example.com');
  });
});

describe('pushed authorization requests', () => {
  it('signs in with the authorization request pushed first', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const url = await oidc.buildAuthorizationUrlWithPAR(rp.config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      nonce,
    });
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const browser = rp.newBrowser();
    const login = asPage(await browser.request(url.href));
    let result = await browser.submit(login, /\/login$/, { email: 'flows@example.com', password: TEST_PASSWORD });
    if (!('callback' in result)) result = await browser.submit(asPage(result), /\/confirm$/);
    const tokens = await oidc.authorizationCodeGrant(rp.config, asLanding(result), { pkceCodeVerifier: verifier, expectedNonce: nonce });
    expect(tokens.claims()?.email).toBe('flows@example.com');
  });
});

describe('DPoP', () => {
  it('binds tokens to the client key and refuses them without a proof', async () => {
    const DPoP = oidc.getDPoPHandle(rp.config, await oidc.randomDPoPKeyPair());
    const request = await rp.authorizationRequest('openid invoices:read', { resource: API });
    const callback = await rp.authorize(rp.newBrowser(), request, 'flows@example.com', TEST_PASSWORD);
    const tokens = await oidc.authorizationCodeGrant(
      rp.config,
      callback,
      { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state },
      { resource: API },
      { DPoP },
    );
    expect(tokens.token_type.toLowerCase()).toBe('dpop');

    const bearer = await fetch(`${demo.url}/invoices`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP /);
    const noProof = await fetch(`${demo.url}/invoices`, { headers: { authorization: `DPoP ${tokens.access_token}` } });
    expect(noProof.status).toBe(401);
    expect(noProof.headers.get('www-authenticate')).toMatch(/error="invalid_dpop_proof"/);

    const withProof = await oidc.fetchProtectedResource(rp.config, tokens.access_token, new URL(`${demo.url}/invoices`), 'GET', undefined, undefined, { DPoP });
    expect(withProof.status).toBe(200);
  });

  it('refuses a DPoP-bound userinfo token presented without a proof', async () => {
    const DPoP = oidc.getDPoPHandle(rp.config, await oidc.randomDPoPKeyPair());
    const request = await rp.authorizationRequest('openid email');
    const callback = await rp.authorize(rp.newBrowser(), request, 'flows@example.com', TEST_PASSWORD);
    const tokens = await oidc.authorizationCodeGrant(rp.config, callback, { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state }, undefined, { DPoP });
    const bearer = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(bearer.status).toBe(401);
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, tokens.claims()!.sub, { DPoP });
    expect(info.email).toBe('flows@example.com');
  });
});

describe('expired access tokens', () => {
  it('are refused by the API and by userinfo', async () => {
    const request = await rp.authorizationRequest('openid invoices:read', { resource: API });
    const callback = await rp.authorize(rp.newBrowser(), request, 'flows@example.com', TEST_PASSWORD);
    const apiTokens = await oidc.authorizationCodeGrant(rp.config, callback, { pkceCodeVerifier: request.verifier, expectedNonce: request.nonce, expectedState: request.state }, { resource: API });
    const userinfoTokens = await rp.signIn('flows@example.com', TEST_PASSWORD);
    const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    expect((await fetch(`${demo.url}/invoices`, auth(apiTokens.access_token))).status).toBe(200);

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 700 * 1000);
    const api = await fetch(`${demo.url}/invoices`, auth(apiTokens.access_token));
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    const me = await fetch(`${server.issuer}/me`, auth(userinfoTokens.access_token));
    expect(me.status).toBe(401);
    expect(me.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });
});
