import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asLanding, asPage, Browser, findForm } from './helpers/browser.ts';
import { createPasswordHasher, type PasswordHasher } from '../src/accounts/passwords.ts';
import { loadConfig } from '../src/config.ts';

let server: RunningServer;
let rp: RelyingParty;
let app: { clientId: string; clientSecret: string | null };
const argonCalls: string[] = [];

// The real hasher, counted: every sign-in attempt must cost exactly one argon2 verification.
function countingHasher(): PasswordHasher {
  const real = createPasswordHasher(loadConfig({}).argon2);
  return {
    hash: real.hash,
    async verify(hash, password) {
      argonCalls.push('verify');
      return real.verify(hash, password);
    },
    async verifyNothing(password) {
      argonCalls.push('verifyNothing');
      return real.verifyNothing(password);
    },
  };
}

beforeAll(async () => {
  server = await startLatchkey({ hasher: countingHasher() });
  app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await registerUser(server.databaseUrl, 'grace@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

async function loginPage(browser: Browser) {
  const request = await rp.authorizationRequest();
  return asPage(await browser.request(request.url));
}

async function rejectsWith(promise: Promise<unknown>, error: string) {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  // A 401 comes back as a WWW-Authenticate challenge, other refusals as an error body.
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    expect(err.status).toBe(401);
    expect(await err.response.json()).toMatchObject({ error });
  } else {
    expect(err).toBeInstanceOf(oidc.ResponseBodyError);
    expect((err as oidc.ResponseBodyError).error).toBe(error);
  }
}

describe('refused sign-ins', () => {
  it('gives the same answer for a wrong password and an unknown email, at the same argon2 cost', async () => {
    const browser = rp.newBrowser();
    argonCalls.length = 0;
    const wrongPassword = asPage(await browser.submit(await loginPage(browser), /\/login$/, { email: 'grace@example.com', password: 'not the password at all' }));
    expect(argonCalls).toEqual(['verify']);
    argonCalls.length = 0;
    const unknownEmail = asPage(await browser.submit(await loginPage(browser), /\/login$/, { email: 'nobody@example.com', password: 'not the password at all' }));
    expect(argonCalls).toEqual(['verifyNothing']);

    const message = (page: typeof wrongPassword) => page.doc.querySelector('[role=alert]')?.text.trim();
    expect(message(wrongPassword)).toBe('The email or password is not correct.');
    expect(message(unknownEmail)).toBe(message(wrongPassword));
    expect(unknownEmail.status).toBe(wrongPassword.status);
    // The form comes back with the email kept, ready for another try.
    expect(findForm(wrongPassword, /\/login$/).fields.email).toBe('grace@example.com');
  });

  it('shows an error page and does not redirect for an unregistered redirect_uri', async () => {
    const url = oidc.buildAuthorizationUrl(rp.config, {
      redirect_uri: 'https://attacker.example/steal',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    const html = await response.text();
    expect(html).toContain('Unregistered return address');
    expect(html).not.toContain('attacker.example');
  });

  it('refuses a code used twice with invalid_grant', async () => {
    const request = await rp.authorizationRequest();
    const callback = await rp.authorize(rp.newBrowser(), request, 'grace@example.com', TEST_PASSWORD);
    await rp.exchange(callback, request);
    await rejectsWith(rp.exchange(callback, request), 'invalid_grant');
  });

  it('refuses a wrong code_verifier with invalid_grant', async () => {
    const request = await rp.authorizationRequest();
    const callback = await rp.authorize(rp.newBrowser(), request, 'grace@example.com', TEST_PASSWORD);
    await rejectsWith(rp.exchange(callback, { ...request, verifier: oidc.randomPKCECodeVerifier() }), 'invalid_grant');
  });

  it('refuses a wrong client secret with invalid_client', async () => {
    const request = await rp.authorizationRequest();
    const callback = await rp.authorize(rp.newBrowser(), request, 'grace@example.com', TEST_PASSWORD);
    const impostor = await RelyingParty.discover(server.issuer, app.clientId, 'a-wrong-secret-of-the-right-sort-of-length');
    await rejectsWith(impostor.exchange(callback, request), 'invalid_client');
    // The code survives a failed client authentication; the real client can still redeem it.
    const tokens = await rp.exchange(callback, request);
    expect(tokens.access_token).toBeTruthy();
  });

  it('refuses a public client that does not use PKCE', async () => {
    const publicApp = await registerApp(server.databaseUrl, REDIRECT_URI, ['--public']);
    const publicRp = await RelyingParty.discover(server.issuer, publicApp.clientId, null);
    const url = oidc.buildAuthorizationUrl(publicRp.config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 'xyz' });
    const callback = asLanding(await publicRp.newBrowser().request(url.href));
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
    expect(callback.searchParams.get('code')).toBeNull();
  });

  describe('CSRF protection on forms', () => {
    it('refuses a login POST without a CSRF token', async () => {
      const browser = rp.newBrowser();
      const page = await loginPage(browser);
      const form = findForm(page, /\/login$/);
      const body = new URLSearchParams({ email: 'grace@example.com', password: TEST_PASSWORD });
      const result = asPage(await browser.request(new URL(form.action, page.url).href, { method: 'POST', body }));
      expect(result.status).toBe(403);
      expect(result.html).toContain('This form has expired');
      // Still not signed in: the interaction asks for a login again.
      const again = await browser.page(page.url);
      expect(findForm(again, /\/login$/)).toBeTruthy();
    });

    it('refuses a login POST with a wrong CSRF token', async () => {
      const browser = rp.newBrowser();
      const page = await loginPage(browser);
      const result = asPage(await browser.submit(page, /\/login$/, { email: 'grace@example.com', password: TEST_PASSWORD, csrf: 'A'.repeat(43) }));
      expect(result.status).toBe(403);
    });

    it('refuses a CSRF token taken from another interaction', async () => {
      const browser = rp.newBrowser();
      const first = await loginPage(browser);
      const second = await loginPage(browser);
      const stolen = findForm(first, /\/login$/).fields.csrf!;
      const result = asPage(await browser.submit(second, /\/login$/, { email: 'grace@example.com', password: TEST_PASSWORD, csrf: stolen }));
      expect(result.status).toBe(403);
    });

    it('refuses a consent POST without a CSRF token', async () => {
      const browser = rp.newBrowser();
      const consent = asPage(await browser.submit(await loginPage(browser), /\/login$/, { email: 'grace@example.com', password: TEST_PASSWORD }));
      const form = findForm(consent, /\/confirm$/);
      const result = asPage(await browser.request(new URL(form.action, consent.url).href, { method: 'POST', body: new URLSearchParams() }));
      expect(result.status).toBe(403);
    });
  });
});
