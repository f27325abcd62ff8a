import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asLanding, asPage, findForm, type Page } from './helpers/browser.ts';

const POST_LOGOUT = 'http://127.0.0.1:1/signed-out';
let server: RunningServer;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey();
  const app = await registerApp(server.databaseUrl, REDIRECT_URI, ['--post-logout-redirect-uri', POST_LOGOUT]);
  await registerUser(server.databaseUrl, 'pages@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

/** Scripts only from files (allowed by the CSP), never inline. */
function expectNoInlineScript(html: string) {
  for (const tag of html.match(/<script[^>]*>[\s\S]*?<\/script>/gi) ?? []) {
    expect(tag).toMatch(/^<script src="\/static\/latchkey\.js\?v=[0-9a-f]{12}" defer><\/script>$/);
  }
}

function expectSafePage(page: Page) {
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  expectNoInlineScript(page.html);
  expect(page.html).not.toMatch(/\son[a-z]+=/i);
  expect(page.html).not.toMatch(/style="/i);
  const csp = page.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(page.headers.get('x-content-type-options')).toBe('nosniff');
  expect(page.html).not.toMatch(/at .+\.(ts|js):\d+/);
}

describe('pages', () => {
  it('login and consent pages have no scripts, a strict CSP, no caching and CSRF fields', async () => {
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest();
    const login = asPage(await browser.request(request.url));
    expectSafePage(login);
    expect(login.headers.get('cache-control')).toBe('no-store');
    expect(findForm(login, /\/login$/).fields.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(login.doc.querySelector('input[name=email]')?.getAttribute('autocomplete')).toBe('username');
    expect(login.doc.querySelector('input[name=password]')?.getAttribute('autocomplete')).toBe('current-password');
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'pages@example.com', password: TEST_PASSWORD }));
    expectSafePage(consent);
    expect(consent.headers.get('cache-control')).toBe('no-store');
    for (const form of [findForm(consent, /\/confirm$/), findForm(consent, /\/abort$/)]) {
      expect(form.method).toBe('POST');
      expect(form.fields.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('answers response_mode=form_post with a form the CSP lets submit itself', async () => {
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest('openid', { response_mode: 'form_post' });
    const login = asPage(await browser.request(request.url));
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'pages@example.com', password: TEST_PASSWORD }));
    const post = asPage(await browser.submit(consent, /\/confirm$/));
    const form = findForm(post, /callback/);
    expect(form.action).toBe(REDIRECT_URI);
    expect(form.fields.code).toBeTruthy();
    // The only inline script is the provider's auto-submit, allowed by its hash alone.
    expect(post.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(post.html).toContain('<noscript>');
  });

  it('escapes what a user typed when the form comes back', async () => {
    const browser = rp.newBrowser();
    const login = asPage(await browser.request((await rp.authorizationRequest()).url));
    const hostile = '"><script>alert(1)</script>@example.com';
    const again = asPage(await browser.submit(login, /\/login$/, { email: hostile, password: 'whatever it may be' }));
    expect(again.html).not.toContain('<script>alert(1)</script>');
    expect(findForm(again, /\/login$/).fields.email).toBe(hostile);
  });

  it('logs out from the app: confirmation page, then back to the registered URI with state', async () => {
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest();
    const tokens = await rp.exchange(await rp.authorize(browser, request, 'pages@example.com', TEST_PASSWORD), request);
    const logoutUrl = oidc.buildEndSessionUrl(rp.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT,
      state: 'bye-state',
    });
    const confirm = asPage(await browser.request(logoutUrl.href));
    expectSafePage(confirm);
    expect(confirm.doc.querySelector('h1')?.text).toBe('Sign out?');
    expect(confirm.html).toContain('Test App');
    const landing = asLanding(await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' }));
    expect(landing.origin + landing.pathname).toBe(POST_LOGOUT);
    expect(landing.searchParams.get('state')).toBe('bye-state');

    // The session is over: the next sign-in asks for the password again.
    const next = asPage(await browser.request((await rp.authorizationRequest()).url));
    expect(findForm(next, /\/login$/)).toBeTruthy();
  });

  it('refuses an unregistered post_logout_redirect_uri', async () => {
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest();
    const tokens = await rp.exchange(await rp.authorize(browser, request, 'pages@example.com', TEST_PASSWORD), request);
    const logoutUrl = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://evil.example/' });
    const page = asPage(await browser.request(logoutUrl.href));
    expect(page.status).toBe(400);
    expectSafePage(page);
    expect(page.html).toContain('post_logout_redirect_uri');
  });

  it('shows a signed-out page when the app gives no return address', async () => {
    const browser = rp.newBrowser();
    await rp.authorize(browser, await rp.authorizationRequest(), 'pages@example.com', TEST_PASSWORD);
    const confirm = asPage(await browser.request(`${server.issuer}/session/end`));
    const done = asPage(await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' }));
    expectSafePage(done);
    expect(done.doc.querySelector('h1')?.text).toBe('You are signed out');
  });

  it('answers unknown pages with a 404 page and expired interactions with a readable error', async () => {
    const browser = rp.newBrowser();
    const missing = asPage(await browser.request(`${server.issuer}/no/such/page`));
    expect(missing.status).toBe(404);
    expectSafePage(missing);
    const stale = asPage(await browser.request(`${server.issuer}/interaction/not-a-real-interaction`));
    expect(stale.status).toBe(400);
    expectSafePage(stale);
    expect(stale.doc.querySelector('h1')?.text).toBe('This sign-in has expired');
  });

  it('serves the stylesheet with a long cache lifetime', async () => {
    const login = asPage(await rp.newBrowser().request((await rp.authorizationRequest()).url));
    const href = login.doc.querySelector('link[rel=stylesheet]')?.getAttribute('href');
    expect(href).toMatch(/^\/static\/latchkey\.css\?v=[0-9a-f]{12}$/);
    const css = await fetch(new URL(href!, server.issuer));
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${server.issuer}/static/..%2Fpackage.json`)).status).toBe(404);
  });
});
