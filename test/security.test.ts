import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as oidc from 'openid-client';
import { advanceClock } from './helpers/clock.ts';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPage, type Browser } from './helpers/browser.ts';
import { clientSecretMatches, digestClientSecret } from '../src/clients/client-secrets.ts';

let server: RunningServer;
let rp: RelyingParty;

beforeAll(async () => {
  server = await startLatchkey({ env: { TRUST_PROXY: 'true' } });
  const app = await registerApp(server.databaseUrl, REDIRECT_URI, ['--post-logout-redirect-uri', 'http://127.0.0.1:1/bye']);
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());
afterEach(() => {
  vi.useRealTimers();
});


/**
 * The login form of one new interaction, and a way to submit it from a given client address, as
 * often as an attacker likes (one form and one CSRF token serve every guess).
 */
async function loginForm() {
  const browser: Browser = rp.newBrowser();
  const login = asPage(await browser.request((await rp.authorizationRequest()).url));
  const form = login.doc.querySelector('form[action$="/login"]')!;
  const fields = Object.fromEntries(form.querySelectorAll('input').map((i) => [i.getAttribute('name')!, i.getAttribute('value') ?? '']));
  const action = new URL(form.getAttribute('action')!, login.url);
  return async (email: string, password: string, from = '198.51.100.7') => {
    const response = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.cookieHeader(action), 'x-forwarded-for': from },
      body: new URLSearchParams({ ...fields, email, password }),
    });
    const html = response.status === 303 ? '' : await response.text();
    return { status: response.status, retryAfter: response.headers.get('retry-after'), html };
  };
}

/** One password attempt through the login form, from a given client address. */
async function attempt(email: string, password: string, from = '198.51.100.7') {
  return (await loginForm())(email, password, from);
}

const throttleRow = (key: string) => server.database.db.selectFrom('sign_in_throttles').selectAll().where('key', '=', key).executeTakeFirst();

async function auditOf(filter: { event?: string; email?: string }) {
  const all = (await admin(server.databaseUrl, ['audit', '--limit', '1000', '--json'])).json<{ event: string; outcome: string; reason: string | null; email: string | null; userId: string | null; clientId: string | null; ip: string | null; actor: string | null; details: Record<string, unknown> | null }[]>();
  return all.filter((e) => (!filter.event || e.event === filter.event) && (!filter.email || e.email === filter.email));
}

describe('brute-force defence', () => {
  it('throttles an account after 5 failures with growing delays, then lets it in', async () => {
    await registerUser(server.databaseUrl, 'target@example.com');
    for (let i = 1; i <= 4; i++) expect((await attempt('target@example.com', 'wrong password attempt')).status).toBe(200);
    // The fifth failure starts a 30-second block.
    expect((await attempt('target@example.com', 'wrong password attempt')).status).toBe(200);
    const blocked = await attempt('target@example.com', TEST_PASSWORD);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(25);
    expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(30);
    expect(blocked.html).toContain('Too many failed attempts. Try again in 1 minute.');
    // Another address is blocked for this account too: the block is per account.
    expect((await attempt('target@example.com', TEST_PASSWORD, '203.0.113.9')).status).toBe(429);

    advanceClock(31);
    // One more failure after the delay doubles it.
    expect((await attempt('target@example.com', 'wrong password attempt')).status).toBe(200);
    const longer = await attempt('target@example.com', TEST_PASSWORD);
    expect(longer.status).toBe(429);
    expect(Number(longer.retryAfter)).toBeGreaterThan(55);

    advanceClock(61 + 31);
    expect((await attempt('target@example.com', TEST_PASSWORD)).status).toBe(303);
    // Success clears the account's counter.
    const rows = await server.database.db.selectFrom('sign_in_throttles').selectAll().where('key', '=', 'account:target@example.com').execute();
    expect(rows).toEqual([]);
  });

  it('throttles an address that fails across many accounts, and only that address', async () => {
    for (let i = 0; i < 20; i++) await attempt(`sprayed-${i}@example.com`, 'Winter2024!Winter', '192.0.2.66');
    const blocked = await attempt('another@example.com', 'Winter2024!Winter', '192.0.2.66');
    expect(blocked.status).toBe(429);
    expect(blocked.retryAfter).toBeTruthy();
    // A refused attempt leaves no counter behind for the account it named.
    expect(await throttleRow('account:another@example.com')).toBeUndefined();
    expect((await attempt('another@example.com', 'Winter2024!Winter', '192.0.2.67')).status).toBe(200);
  });

  it('treats unknown emails like known ones: same answer, same counting', async () => {
    for (let i = 0; i < 5; i++) await attempt('nobody-here@example.com', 'some password guess', '198.51.100.200');
    expect((await attempt('nobody-here@example.com', 'some password guess', '198.51.100.201')).status).toBe(429);
  });

  it('counts guesses sent all at once before verifying any of them', async () => {
    await registerUser(server.databaseUrl, 'parallel@example.com');
    const submit = await loginForm();
    const guesses = await Promise.all(Array.from({ length: 30 }, (_, i) => submit('parallel@example.com', `wrong guess number ${i}`, '198.51.100.90')));
    // The account's allowance is 5 verified guesses; the others are refused without argon2 work.
    expect(guesses.filter((g) => g.status === 200)).toHaveLength(5);
    expect(guesses.filter((g) => g.status === 429)).toHaveLength(25);
    const signIns = await auditOf({ event: 'sign_in', email: 'parallel@example.com' });
    expect(signIns.filter((e) => e.reason === 'wrong_password')).toHaveLength(5);
    expect(signIns.filter((e) => e.reason === 'throttled')).toHaveLength(25);
    expect(await auditOf({ event: 'sign_in.throttled', email: 'parallel@example.com' })).toHaveLength(1);
    expect((await submit('parallel@example.com', TEST_PASSWORD, '198.51.100.90')).status).toBe(429);
  });

  it('counts a parallel spray across accounts against the address before verifying it', async () => {
    const submit = await loginForm();
    const guesses = await Promise.all(Array.from({ length: 30 }, (_, i) => submit(`parallel-spray-${i}@example.com`, 'Spring2025!Spring', '192.0.2.90')));
    expect(guesses.filter((g) => g.status === 200)).toHaveLength(20);
    expect(guesses.filter((g) => g.status === 429)).toHaveLength(10);
  });

  it('gives back what a correct password reserved: the address counts as before, and a block it started is lifted', async () => {
    await registerUser(server.databaseUrl, 'nearly-blocked@example.com');
    await Promise.all(Array.from({ length: 19 }, (_, i) => attempt(`sprayed-before-${i}@example.com`, 'Autumn2025!Autumn', '192.0.2.120')));
    expect(await throttleRow('ip:192.0.2.120')).toMatchObject({ failures: 19, blocked_until: null });
    // The 20th attempt from this address would start its block, were the password wrong.
    expect((await attempt('nearly-blocked@example.com', TEST_PASSWORD, '192.0.2.120')).status).toBe(303);
    expect(await throttleRow('ip:192.0.2.120')).toMatchObject({ failures: 19, blocked_until: null });
    expect(await throttleRow('account:nearly-blocked@example.com')).toBeUndefined();
    // And a fresh address leaves no counter behind.
    expect((await attempt('nearly-blocked@example.com', TEST_PASSWORD, '192.0.2.121')).status).toBe(303);
    expect(await throttleRow('ip:192.0.2.121')).toBeUndefined();
    expect((await attempt('someone-else@example.com', 'Autumn2025!Autumn', '192.0.2.120')).status).toBe(200);
    expect((await attempt('someone-else@example.com', 'Autumn2025!Autumn', '192.0.2.120')).status).toBe(429);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY says so', async () => {
    const direct = await startLatchkey();
    try {
      const app = await registerApp(direct.databaseUrl, REDIRECT_URI);
      const directRp = await RelyingParty.discover(direct.issuer, app.clientId, app.clientSecret);
      const send = async (email: string, forwardedFor: string) => {
        const browser = directRp.newBrowser();
        const login = asPage(await browser.request((await directRp.authorizationRequest()).url));
        const form = login.doc.querySelector('form[action$="/login"]')!;
        const fields = Object.fromEntries(form.querySelectorAll('input').map((i) => [i.getAttribute('name')!, i.getAttribute('value') ?? '']));
        const action = new URL(form.getAttribute('action')!, login.url);
        return fetch(action, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.cookieHeader(action), 'x-forwarded-for': forwardedFor },
          body: new URLSearchParams({ ...fields, email, password: 'a wrong guess here' }),
        });
      };
      // A forged header per attempt must not give the attacker a fresh address each time.
      for (let i = 0; i < 20; i++) await send(`spray-${i}@example.com`, `10.0.0.${i}`);
      expect((await send('last@example.com', '10.9.9.9')).status).toBe(429);
      const keys = await direct.database.db.selectFrom('sign_in_throttles').select('key').where('key', 'like', 'ip:%').execute();
      expect(keys.map((k) => k.key)).toEqual(['ip:127.0.0.1']);
    } finally {
      await direct.close();
    }
  });
});

describe('password policy', () => {
  it.each([
    ['short', /at least 12 characters/],
    ['1qaz2wsx3edc', /commonly used or breached/],
    ['qwertyuiopasdfghjkl', /commonly used or breached/],
    ['my latchkey password', /name of the service/],
    ['policy@example.com', /must not be the email/],
  ])('refuses %j', async (password, message) => {
    const result = await admin(server.databaseUrl, ['user', 'create', '--email', 'policy@example.com', '--password-stdin'], password);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it('accepts a long passphrase without composition rules, up to 1024 characters', async () => {
    const result = await admin(server.databaseUrl, ['user', 'create', '--email', 'passphrase@example.com', '--password-stdin'], 'a'.repeat(40) + ' and some words');
    expect(result.code).toBe(0);
    const tooLong = await admin(server.databaseUrl, ['user', 'create', '--email', 'toolong@example.com', '--password-stdin'], 'x y '.repeat(300));
    expect(tooLong.stderr).toMatch(/at most 1024/);
  });
});

describe('audit trail', () => {
  it('records sign-ins, throttling, consent, revocation, logout and admin changes', async () => {
    const user = await registerUser(server.databaseUrl, 'audited@example.com');
    await attempt('audited@example.com', 'not my password', '198.51.100.50');
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest('openid offline_access');
    const tokens = await rp.exchange(await rp.authorize(browser, request, 'audited@example.com', TEST_PASSWORD), request);
    await oidc.tokenRevocation(rp.config, tokens.refresh_token!);
    const confirm = asPage(await browser.request(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/bye' }).href));
    await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    const denied = rp.newBrowser();
    const login = asPage(await denied.request((await rp.authorizationRequest('openid email')).url));
    const consent = asPage(await denied.submit(login, /\/login$/, { email: 'audited@example.com', password: TEST_PASSWORD }));
    await denied.submit(consent, /\/abort$/);

    const clientId = rp.config.clientMetadata().client_id;
    const events = await auditOf({});
    const find = (event: string, extra: (e: (typeof events)[number]) => boolean = () => true) => events.find((e) => e.event === event && extra(e));
    expect(find('sign_in', (e) => e.outcome === 'failure' && e.email === 'audited@example.com')).toMatchObject({ reason: 'wrong_password', ip: '198.51.100.50', clientId });
    expect(find('sign_in', (e) => e.outcome === 'success' && e.email === 'audited@example.com')).toMatchObject({ userId: user.id, clientId });
    expect(find('consent.granted', (e) => e.userId === user.id)).toMatchObject({ clientId, details: expect.objectContaining({ scope: expect.arrayContaining(['openid', 'offline_access']) }) });
    expect(find('consent.denied', (e) => e.userId === user.id)).toBeTruthy();
    expect(find('token.revoked', (e) => e.userId === user.id)).toMatchObject({ clientId, details: { type: 'refresh_token' } });
    expect(find('logout', (e) => e.userId === user.id)).toMatchObject({ clientId });
    expect(find('sign_in', (e) => e.reason === 'throttled')).toBeTruthy();
    expect(find('sign_in.throttled', (e) => e.email === 'target@example.com')).toMatchObject({ reason: 'account' });
    expect(find('admin.user.create', (e) => JSON.stringify(e.details).includes('audited@example.com'))).toMatchObject({ outcome: 'success', actor: expect.stringMatching(/.+@.+/) });
    expect(find('admin.user.create', (e) => e.outcome === 'failure')).toMatchObject({ reason: expect.stringMatching(/password/) });
    // Nothing secret is in the trail.
    const text = JSON.stringify(events);
    for (const secret of [TEST_PASSWORD, tokens.refresh_token!, tokens.access_token]) expect(text.includes(secret)).toBe(false);
  });

  it('filters by user and time', async () => {
    const mine = (await admin(server.databaseUrl, ['audit', '--user', 'audited@example.com', '--json'])).json<{ email: string | null; userId: string | null }[]>();
    expect(mine.length).toBeGreaterThan(3);
    const future = (await admin(server.databaseUrl, ['audit', '--since', '2999-01-01', '--json'])).json<unknown[]>();
    expect(future).toEqual([]);
    const recent = (await admin(server.databaseUrl, ['audit', 'list', '--since', '1h', '--json'])).json<unknown[]>();
    expect(recent.length).toBeGreaterThan(0);
    const bad = await admin(server.databaseUrl, ['audit', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since must be/);
  });
});

describe('client secrets at rest', () => {
  it('are stored as their SHA-256 (base64url), so digests stored by any version keep matching', () => {
    // SHA-256("abc") from FIPS 180-2, and a secret beyond ASCII (hashed as UTF-8).
    expect(digestClientSecret('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(digestClientSecret('sécret')).toBe('llkpd1qkbxBf3iG_ue1tc_8BPDCeAZJOPeNJSsv2NNQ');
    expect(clientSecretMatches(digestClientSecret('sécret'), 'sécret')).toBe(true);
    expect(clientSecretMatches(digestClientSecret('sécret'), 'secret')).toBe(false);
    expect(clientSecretMatches('short', 'abc')).toBe(false);
  });
});
