import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { createTestDatabase, testDialect, withOtherConnection, type TestDatabase } from './helpers/database.ts';
import { registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { waitFor } from './helpers/wait.ts';
import { asLanding, asPage, findForm } from './helpers/browser.ts';
import { startSwitchProxy, type SwitchProxy } from './helpers/switch-proxy.ts';

// Several identical instances on one PostgreSQL database, behind one issuer URL.
describe.skipIf(testDialect !== 'postgres')('two instances on one PostgreSQL database', () => {
  let database: TestDatabase;
  let proxy: SwitchProxy;
  let a: RunningServer;
  let b: RunningServer;
  let rp: RelyingParty;
  let app: { clientId: string; clientSecret: string | null };

  beforeAll(async () => {
    database = await createTestDatabase();
    const instances: RunningServer[] = [];
    proxy = await startSwitchProxy(() => instances.map((i) => i.url));
    const options = { databaseUrl: database.url, issuer: proxy.url, env: { REFRESH_TOKEN_REUSE_GRACE: '0' } };
    // Both start at once on an empty database: they must end up with the same keys.
    [a, b] = await Promise.all([startLatchkey(options), startLatchkey(options)]);
    instances.push(a!, b!);
    app = await registerApp(database.url, REDIRECT_URI);
    await registerUser(database.url, 'twice@example.com');
    rp = await RelyingParty.discover(proxy.url, app.clientId, app.clientSecret);
  });
  afterAll(async () => {
    await proxy.close();
    await a.close();
    await b.close();
    await database.drop();
  });

  it('publish the same signing keys', async () => {
    const jwks = async (server: RunningServer) => (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
    const [fromA, fromB] = await Promise.all([jwks(a), jwks(b)]);
    expect(fromA.keys).toHaveLength(1);
    expect(fromB).toEqual(fromA);
  });

  it('finish on one instance a sign-in started on the other, and redeem the code on the other again', async () => {
    const request = await rp.authorizationRequest('openid email offline_access');
    const browser = rp.newBrowser();
    proxy.use(0);
    const login = asPage(await browser.request(request.url));
    proxy.use(1);
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'twice@example.com', password: TEST_PASSWORD }));
    proxy.use(0);
    const callback = asLanding(await browser.submit(consent, /\/confirm$/));
    proxy.use(1);
    const tokens = await rp.exchange(callback, request);
    expect(tokens.claims()?.email).toBe('twice@example.com');
    expect(proxy.served[0]).toBeGreaterThan(0);
    expect(proxy.served[1]).toBeGreaterThan(0);
  });

  it('see a refresh on one instance as used on the other', async () => {
    proxy.use(0);
    const tokens = await rp.signIn('twice@example.com', TEST_PASSWORD, 'openid offline_access');
    const rotated = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    proxy.use(1);
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    proxy.use(0);
    // Reuse revoked the grant everywhere, the rotated token included.
    await expect(oidc.refreshTokenGrant(rp.config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  /**
   * Sends one token request to each instance so that they meet: each reads the code or token
   * unconsumed, and their writes consuming it then wait on a lock together. Returns both
   * responses, and checks that the loser's revocation of the grant reached the audit trail.
   */
  async function meetingOnBothInstances(model: string, body: Record<string, string>): Promise<{ granted: { refresh_token: string; access_token: string }; refused: { error: string } }> {
    const token = (server: RunningServer) =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`${app.clientId}:${app.clientSecret!}`)}` },
        body: new URLSearchParams(body),
      });
    const revocations = () =>
      withOtherConnection(database.url, async (other) => (await other.query<{ n: number }>(`select count(*)::int as n from audit_events where event = 'grant.revoked'`)).rows[0]!.n);
    const revokedBefore = await revocations();
    const responses = await withOtherConnection(database.url, async (other) => {
      await other.query('begin');
      await other.query(`select 1 from oidc_payloads where model = $1 and consumed_at is null for update`, [model]);
      const sent = [token(a), token(b)];
      const waiting = async () => (await other.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).rows[0]!.n;
      await waitFor(async () => (await waiting()) >= 2, 'both consuming writes waiting');
      await other.query('commit');
      return Promise.all(sent);
    });
    expect(responses.map((response) => response.status).sort()).toEqual([200, 400]);
    const [granted, refused] = await Promise.all([responses.find((r) => r.status === 200)!.json(), responses.find((r) => r.status === 400)!.json()]);
    await waitFor(async () => (await revocations()) === revokedBefore + 1, 'the revocation in the audit trail');
    return { granted: granted as { refresh_token: string; access_token: string }, refused: refused as { error: string } };
  }

  it('let one of two requests for the same code redeem it, and revoke its grant for the other', async () => {
    proxy.use(0);
    const request = await rp.authorizationRequest('openid email offline_access');
    const code = (await rp.authorize(rp.newBrowser(), request, 'twice@example.com', TEST_PASSWORD)).searchParams.get('code')!;
    const { granted, refused } = await meetingOnBothInstances('AuthorizationCode', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: request.verifier });
    expect(refused).toMatchObject({ error: 'invalid_grant' });
    // A replay revokes the grant (RFC 6749 §4.1.2), however it was caught.
    await expect(oidc.refreshTokenGrant(rp.config, granted.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await fetch(`${a.url}/me`, { headers: { authorization: `Bearer ${granted.access_token}` } })).status).toBe(401);
  });

  it('let one of two refreshes with the same token through, without a reuse grace, and revoke its grant', async () => {
    proxy.use(0);
    const tokens = await rp.signIn('twice@example.com', TEST_PASSWORD, 'openid offline_access');
    const { granted, refused } = await meetingOnBothInstances('RefreshToken', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(refused).toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(rp.config, granted.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('end the session on both when the user logs out on one', async () => {
    const browser = rp.newBrowser();
    proxy.use(0);
    await rp.authorize(browser, await rp.authorizationRequest(), 'twice@example.com', TEST_PASSWORD);
    proxy.use(1);
    const silent = await browser.request((await rp.authorizationRequest()).url);
    expect('callback' in silent).toBe(true);
    const confirm = asPage(await browser.request(`${proxy.url}/session/end`));
    await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    proxy.use(0);
    const again = asPage(await browser.request((await rp.authorizationRequest()).url));
    expect(findForm(again, /\/login$/)).toBeTruthy();
  });
});
