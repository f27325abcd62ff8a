import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPage, Browser, type Page } from './helpers/browser.ts';

let server: RunningServer;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey();
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await registerUser(server.databaseUrl, 'headers@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

/** Scripts only from files (allowed by the CSP), never inline. */
function expectNoInlineScript(html: string) {
  for (const tag of html.match(/<script[^>]*>[\s\S]*?<\/script>/gi) ?? []) {
    expect(tag).toMatch(/^<script src="\/static\/latchkey\.js\?v=[0-9a-f]{12}" defer><\/script>$/);
  }
}

function expectHardened(page: { headers: Headers }, what: string) {
  const h = page.headers;
  const csp = h.get('content-security-policy') ?? '';
  expect(csp, what).toContain("default-src 'none'");
  expect(csp, what).toContain("frame-ancestors 'none'");
  expect(csp, what).not.toMatch(/unsafe-inline|unsafe-eval|script-src [^;]*\*/);
  expect(h.get('x-content-type-options'), what).toBe('nosniff');
  expect(h.get('referrer-policy'), what).toBe('no-referrer');
  expect(h.get('x-frame-options'), what).toBe('DENY');
}

function expectNoStore(page: { headers: Headers }, what: string) {
  expect(page.headers.get('cache-control'), what).toMatch(/no-store/);
}

describe('HTTP hardening', () => {
  it('sends the security headers on every page, and no-store on every page with a form', async () => {
    const pages: [string, Page][] = [];
    const browser = rp.newBrowser();
    const login = asPage(await browser.request((await rp.authorizationRequest()).url));
    pages.push(['login', login]);
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'headers@example.com', password: TEST_PASSWORD }));
    pages.push(['consent', consent]);
    await browser.submit(consent, /\/confirm$/);
    const logout = asPage(await browser.request(`${server.issuer}/session/end`));
    pages.push(['logout', logout]);
    pages.push(['logged out', asPage(await browser.submit(logout, /\/session\/end\/confirm$/, { logout: 'yes' }))]);
    const device = new Browser('http://127.0.0.1:1/');
    pages.push(['device code entry', await device.page(`${server.issuer}/device`)]);
    pages.push(['error', await device.page(`${server.issuer}/interaction/nothing-here`)]);
    pages.push(['not found', await device.page(`${server.issuer}/no-such-page`)]);
    for (const [name, page] of pages) {
      expectHardened(page, name);
      expectNoInlineScript(page.html);
      if (page.doc.querySelector('form')) expectNoStore(page, name);
    }
    expectHardened(await fetch(`${server.issuer}/.well-known/openid-configuration`), 'discovery');
  });

  it('sends token responses with no-store', async () => {
    const created = (await admin(server.databaseUrl, ['client', 'create', '--service', '--name', 'Headers job', '--json'])).json<{ clientId: string; clientSecret: string }>();
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${created.clientId}:${created.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(response.status).toBe(200);
    expectNoStore(response, 'token');
    const tokens = await rp.signIn('headers@example.com', TEST_PASSWORD);
    const info = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expectNoStore(info, 'userinfo');
  });

  it('marks cookies HttpOnly and SameSite=Lax, and Secure behind an https issuer', async () => {
    const secure = await startLatchkey({ issuer: 'https://id.example.test', env: { TRUST_PROXY: 'true' } });
    try {
      const app = await registerApp(secure.databaseUrl, REDIRECT_URI);
      const params = new URLSearchParams({
        client_id: app.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      });
      const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test' };
      const auth = await fetch(`${secure.url}/auth?${params}`, { redirect: 'manual', headers: viaProxy });
      expect(auth.status).toBe(303);
      const cookies = auth.headers.getSetCookie();
      expect(cookies.length).toBeGreaterThan(0);
      for (const cookie of cookies) {
        expect(cookie.toLowerCase()).toContain('httponly');
        expect(cookie.toLowerCase()).toContain('samesite=lax');
        expect(cookie.toLowerCase()).toContain('secure');
      }
      expect(auth.headers.get('strict-transport-security')).toMatch(/max-age=\d{7,}/);
      const uid = new URL(auth.headers.get('location')!, 'https://id.example.test').pathname;
      const login = await fetch(`${secure.url}${uid}`, {
        headers: { ...viaProxy, cookie: cookies.map((c) => c.split(';')[0]).join('; ') },
      });
      expect(login.status).toBe(200);
      for (const cookie of login.headers.getSetCookie()) expect(cookie.toLowerCase()).toMatch(/httponly.*|secure/);
      expect(login.headers.getSetCookie().some((c) => c.startsWith('latchkey.csrf=') && /;\s*secure/i.test(c))).toBe(true);
    } finally {
      await secure.close();
    }
  });

  it('sends no HSTS over a plain-http issuer', async () => {
    expect((await fetch(`${server.issuer}/healthz`)).headers.get('strict-transport-security')).toBeNull();
  });
});
