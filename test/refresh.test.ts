import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as oidc from 'openid-client';
import { advanceClock } from './helpers/clock.ts';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';

let server: RunningServer;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey({ env: { REFRESH_TOKEN_REUSE_GRACE: '5', REFRESH_TOKEN_IDLE_TTL: '3600', REFRESH_TOKEN_ABSOLUTE_TTL: '5400' } });
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await registerUser(server.databaseUrl, 'refresh@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());
afterEach(() => {
  vi.useRealTimers();
});


const offline = () => rp.signIn('refresh@example.com', TEST_PASSWORD, 'openid offline_access');

async function introspect(token: string) {
  return oidc.tokenIntrospection(rp.config, token);
}

describe('refresh tokens', () => {
  it('rotate on every use', async () => {
    const first = await offline();
    const second = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    const third = await oidc.refreshTokenGrant(rp.config, second.refresh_token!);
    expect(new Set([first.refresh_token, second.refresh_token, third.refresh_token]).size).toBe(3);
  });

  it('revoke the whole grant when a used one is presented after the grace window', async () => {
    const first = await offline();
    const second = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    advanceClock(6);
    await expect(oidc.refreshTokenGrant(rp.config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Everything from that grant is gone: the newer refresh token and the access token too.
    await expect(oidc.refreshTokenGrant(rp.config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await introspect(second.access_token)).active).toBe(false);
  });

  it('tolerate a second use within the grace window, so racing refreshes do not log the user out', async () => {
    const first = await offline();
    const a = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    advanceClock(3);
    const b = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    expect(b.refresh_token).not.toBe(a.refresh_token);
    expect((await oidc.refreshTokenGrant(rp.config, a.refresh_token!)).access_token).toBeTruthy();
    expect((await oidc.refreshTokenGrant(rp.config, b.refresh_token!)).access_token).toBeTruthy();
  });

  it('expire after the idle lifetime without use', async () => {
    const first = await offline();
    expect((await introspect(first.refresh_token!)).exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600);
    advanceClock(3601);
    await expect(oidc.refreshTokenGrant(rp.config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('never outlive the absolute lifetime, however often they rotate', async () => {
    const first = await offline();
    const start = Math.floor(Date.now() / 1000);
    advanceClock(3000);
    const second = await oidc.refreshTokenGrant(rp.config, first.refresh_token!);
    // Idle alone would allow now + 3600; the chain's absolute limit caps it at start + 5400.
    const exp = (await introspect(second.refresh_token!)).exp!;
    expect(exp).toBeLessThanOrEqual(start + 5400 + 1);
    expect(exp).toBeGreaterThan(start + 5400 - 10);
    advanceClock(2401);
    await expect(oidc.refreshTokenGrant(rp.config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('revocation and introspection', () => {
  it('introspects a live token as active and a revoked one as inactive', async () => {
    const tokens = await offline();
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, client_id: rp.config.clientMetadata().client_id, scope: 'openid offline_access' });
    await oidc.tokenRevocation(rp.config, tokens.access_token);
    expect((await introspect(tokens.access_token)).active).toBe(false);
    await oidc.tokenRevocation(rp.config, tokens.refresh_token!);
    expect((await introspect(tokens.refresh_token!)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('introspects an expired access token as inactive and userinfo refuses it', async () => {
    const tokens = await offline();
    advanceClock(601);
    expect((await introspect(tokens.access_token)).active).toBe(false);
    await expect(oidc.fetchUserInfo(rp.config, tokens.access_token, oidc.skipSubjectCheck)).rejects.toMatchObject({ status: 401 });
  });

  it('lets an app introspect and revoke only its own tokens, and a service introspect any', async () => {
    const tokens = await offline();
    const other = await registerApp(server.databaseUrl, REDIRECT_URI);
    const otherRp = await RelyingParty.discover(server.issuer, other.clientId, other.clientSecret);
    expect((await oidc.tokenIntrospection(otherRp.config, tokens.access_token)).active).toBe(false);
    await oidc.tokenRevocation(otherRp.config, tokens.access_token).catch(() => undefined);
    expect((await introspect(tokens.access_token)).active).toBe(true);

    const service = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Introspector', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const serviceConfig = await oidc.discovery(new URL(server.issuer), service.clientId, service.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    expect((await oidc.tokenIntrospection(serviceConfig, tokens.access_token)).active).toBe(true);
  });

  it('answers a service that introspects the token of a deleted app: inactive', async () => {
    const gone = await registerApp(server.databaseUrl, REDIRECT_URI);
    const goneRp = await RelyingParty.discover(server.issuer, gone.clientId, gone.clientSecret);
    const tokens = await goneRp.signIn('refresh@example.com', TEST_PASSWORD, 'openid offline_access');
    const service = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Introspector', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const serviceConfig = await oidc.discovery(new URL(server.issuer), service.clientId, service.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    expect((await oidc.tokenIntrospection(serviceConfig, tokens.access_token)).active).toBe(true);
    expect((await admin(server.databaseUrl, ['client', 'delete', gone.clientId])).code).toBe(0);
    for (const token of [tokens.access_token, tokens.refresh_token!]) {
      expect(await oidc.tokenIntrospection(serviceConfig, token)).toEqual({ active: false });
    }
  });

  it('refuses introspection and revocation from an unauthenticated caller', async () => {
    const tokens = await offline();
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('signs a user out everywhere with the admin script', async () => {
    const tokens = await offline();
    const result = await admin(server.databaseUrl, ['user', 'sign-out', 'refresh@example.com']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/signed out refresh@example.com/);
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await introspect(tokens.access_token)).active).toBe(false);
    expect((await admin(server.databaseUrl, ['user', 'sign-out', 'ghost@example.com'])).code).toBe(1);
  });
});
