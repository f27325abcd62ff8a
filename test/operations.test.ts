import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPostgresAdmin, testDialect } from './helpers/database.ts';
import { asPage } from './helpers/browser.ts';

const METRICS_TOKEN = 'a-metrics-token-for-the-scraper';
let server: RunningServer;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey({ env: { METRICS_TOKEN } });
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await registerUser(server.databaseUrl, 'ops@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

describe('health and readiness', () => {
  it('reports alive and ready', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});

describe('metrics', () => {
  it('are refused without the bearer token', async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
  });

  it('count requests by route, sign-ins by outcome and tokens by grant type', async () => {
    const tokens = await rp.signIn('ops@example.com', TEST_PASSWORD, 'openid offline_access');
    await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    const browser = rp.newBrowser();
    const login = asPage(await browser.request((await rp.authorizationRequest()).url));
    await browser.submit(login, /\/login$/, { email: 'ops@example.com', password: 'not the right password' });

    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/latchkey_http_requests_total\{route="token",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/latchkey_http_requests_total\{route="\/interaction\/:uid\/login",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/latchkey_http_request_duration_seconds_bucket\{le="0.1",route="authorization",method="GET"\} \d+/);
    expect(text).toMatch(/latchkey_sign_ins_total\{outcome="success"\} [1-9]/);
    expect(text).toMatch(/latchkey_sign_ins_total\{outcome="failure"\} [1-9]/);
    expect(text).toMatch(/latchkey_tokens_issued_total\{grant_type="authorization_code"\} [1-9]/);
    expect(text).toMatch(/latchkey_tokens_issued_total\{grant_type="refresh_token"\} [1-9]/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    if (testDialect === 'postgres') expect(text).toMatch(/latchkey_db_pool_connections\{state="total"\} \d+/);
    // Raw paths never become labels: interaction ids would make the series unbounded.
    expect(text).not.toMatch(/route="\/interaction\/[A-Za-z0-9_-]{20,}/);
  });

  it('are not served at all when neither a token nor a port is configured', async () => {
    const plain = await startLatchkey();
    try {
      expect((await fetch(`${plain.url}/metrics`)).status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});

describe('logs', () => {
  it('carry a request id per request, echo it back, and hold no secrets or query strings', async () => {
    const passed = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'proxy-assigned-id-123' } });
    expect(passed.headers.get('x-request-id')).toBe('proxy-assigned-id-123');
    const hostile = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'bad id\twith "quotes"' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const before = server.logs.length;
    const tokens = await rp.signIn('ops@example.com', TEST_PASSWORD, 'openid offline_access');
    const lines = server.logs.slice(before);
    const requests = lines.filter((l) => l.event === 'request');
    expect(requests.length).toBeGreaterThan(4);
    for (const line of requests) {
      expect(line.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(String(line.path)).not.toContain('?');
    }
    const text = JSON.stringify(lines);
    for (const secret of [TEST_PASSWORD, tokens.access_token, tokens.refresh_token!, tokens.id_token!, rp.config.clientMetadata().client_secret as string]) {
      expect(text.includes(secret), 'a secret in the logs').toBe(false);
    }
  });
});

describe.skipIf(testDialect !== 'postgres')('database outage', () => {
  it('answers 503 while the database is away and recovers on its own when it returns', async () => {
    const name = new URL(server.databaseUrl).pathname.slice(1);
    await asPostgresAdmin(`alter database ${name} with allow_connections false`);
    await asPostgresAdmin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`);
    try {
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(/^database unreachable/);

      const token = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' }),
      });
      expect(token.status).toBe(503);
      expect(token.headers.get('retry-after')).toBe('5');
      expect(await token.json()).toMatchObject({ error: 'temporarily_unavailable' });

      const page = asPage(await rp.newBrowser().request((await rp.authorizationRequest()).url));
      expect(page.status).toBe(503);
      expect(page.doc.querySelector('h1')?.text).toBe('Temporarily unavailable');
    } finally {
      await asPostgresAdmin(`alter database ${name} with allow_connections true`);
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await rp.signIn('ops@example.com', TEST_PASSWORD)).id_token).toBeTruthy();
  });
});
