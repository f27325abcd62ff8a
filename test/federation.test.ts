import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asLanding, asPage, Browser, findForm, type Page } from './helpers/browser.ts';
import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { startFakeUpstream, validIdToken, type FakeUpstream, type MintContext } from './helpers/fake-upstream.ts';
import { testDialect, withOtherConnection } from './helpers/database.ts';

// Federation tested for real: a second Latchkey instance is the upstream provider.
let downstream: RunningServer;
let upstream: RunningServer;
let rp: RelyingParty;
let upstreamClient: { clientId: string; clientSecret: string | null };

const UPSTREAM_PASSWORD = 'an upstream passphrase that is long';

beforeAll(async () => {
  downstream = await startLatchkey();
  upstream = await startLatchkey();
  upstreamClient = await registerApp(upstream.databaseUrl, `${downstream.issuer}/federation/callback`);
  await admin(upstream.databaseUrl, ['role', 'create', 'engineering']);
  for (const [email, extra] of [
    ['fed-new@example.com', ['--email-verified', '--name', 'New Person', '--role', 'engineering']],
    ['fed-linked@example.com', ['--email-verified', '--name', 'Linked Person']],
    ['fed-unverified@example.com', []],
    ['fed-disabled@example.com', ['--email-verified']],
  ] as const) {
    await registerUser(upstream.databaseUrl, email, [...extra], UPSTREAM_PASSWORD);
  }
  await admin(downstream.databaseUrl, ['role', 'create', 'developer']);
  const created = await admin(
    downstream.databaseUrl,
    ['idp', 'create', '--id', 'upstream', '--name', 'Upstream', '--issuer', upstream.issuer, '--client-id', upstreamClient.clientId, '--client-secret-stdin',
      '--scope', 'openid email profile roles', '--allow-signup', '--link-by-verified-email', '--map-claim', 'roles', '--role-map', 'engineering=developer', '--json'],
    upstreamClient.clientSecret!,
    { ISSUER: downstream.issuer },
  );
  expect(created.code, created.stderr).toBe(0);
  expect(created.json<{ redirectUri: string }>().redirectUri).toBe(`${downstream.issuer}/federation/callback`);
  await registerUser(downstream.databaseUrl, 'fed-linked@example.com', ['--email-verified']);
  await registerUser(downstream.databaseUrl, 'fed-unverified@example.com');
  await registerUser(downstream.databaseUrl, 'fed-disabled@example.com');
  const app = await registerApp(downstream.databaseUrl, REDIRECT_URI);
  rp = await RelyingParty.discover(downstream.issuer, app.clientId, app.clientSecret);
});
afterAll(async () => {
  await downstream.close();
  await upstream.close();
});

const userCount = async () => Number((await downstream.database.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
const linkCount = async () => Number((await downstream.database.db.selectFrom('user_links').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

/** From the app, through Latchkey's login page, to the upstream's login page; returns it. */
async function toUpstreamLogin(browser: Browser): Promise<{ login: Page; request: Awaited<ReturnType<RelyingParty['authorizationRequest']>> }> {
  const request = await rp.authorizationRequest('openid email profile roles');
  const page = asPage(await browser.request(request.url));
  expect(page.doc.querySelector('.federation button')?.text).toBe('Continue with Upstream');
  const login = asPage(await browser.submit(page, /\/federated\/upstream$/));
  expect(login.url.startsWith(upstream.issuer)).toBe(true);
  return { login, request };
}

/** Signs in at the upstream and consents there; returns what the browser reaches next. */
async function throughUpstream(browser: Browser, email: string) {
  const { login, request } = await toUpstreamLogin(browser);
  let result = await browser.submit(login, /\/login$/, { email, password: UPSTREAM_PASSWORD });
  if (!('callback' in result) && asPage(result).url.startsWith(upstream.issuer) && findFormOrNull(asPage(result), /\/confirm$/)) {
    result = await browser.submit(asPage(result), /\/confirm$/);
  }
  return { result, request };
}

function findFormOrNull(page: Page, action: RegExp) {
  try {
    return findForm(page, action);
  } catch {
    return null;
  }
}

/** Finishes at Latchkey (consent for the app) and exchanges the code. */
async function finishAtDownstream(browser: Browser, result: Awaited<ReturnType<Browser['request']>>, request: Awaited<ReturnType<RelyingParty['authorizationRequest']>>) {
  if (!('callback' in result)) result = await browser.submit(asPage(result), /\/confirm$/);
  return rp.exchange(asLanding(result), request);
}

describe('signing in through another OpenID Connect provider', () => {
  it('creates an account on first sign-in when sign-up is allowed, with mapped roles', async () => {
    const before = await userCount();
    const browser = rp.newBrowser();
    const { result, request } = await throughUpstream(browser, 'fed-new@example.com');
    const tokens = await finishAtDownstream(browser, result, request);
    expect(tokens.claims()).toMatchObject({ email: 'fed-new@example.com', email_verified: true, name: 'New Person', roles: ['developer'] });
    expect(await userCount()).toBe(before + 1);
    const shown = (await admin(downstream.databaseUrl, ['user', 'show', 'fed-new@example.com', '--json'])).json<{ links: { provider: string }[]; roles: string[] }>();
    expect(shown.links.map((l) => l.provider)).toEqual(['upstream']);
    expect(shown.roles).toEqual(['developer']);

    // The second time, the link is found: no new account.
    const again = rp.newBrowser();
    const second = await throughUpstream(again, 'fed-new@example.com');
    expect((await finishAtDownstream(again, second.result, second.request)).claims()?.sub).toBe(tokens.claims()?.sub);
    expect(await userCount()).toBe(before + 1);
  });

  it('links to an existing account when the upstream and Latchkey both have the email verified', async () => {
    const existing = (await admin(downstream.databaseUrl, ['user', 'show', 'fed-linked@example.com', '--json'])).json<{ id: string }>();
    const browser = rp.newBrowser();
    const { result, request } = await throughUpstream(browser, 'fed-linked@example.com');
    const tokens = await finishAtDownstream(browser, result, request);
    expect(tokens.claims()?.sub).toBe(existing.id);
    expect((await admin(downstream.databaseUrl, ['user', 'show', 'fed-linked@example.com', '--json'])).json<{ name: string }>().name).toBe('Linked Person');
  });

  it('refreshes the profile from the provider on each sign-in, email included when verified and free', async () => {
    const before = (await admin(downstream.databaseUrl, ['user', 'show', 'fed-new@example.com', '--json'])).json<{ id: string }>();
    const upstreamUser = (await admin(upstream.databaseUrl, ['user', 'show', 'fed-new@example.com', '--json'])).json<{ id: string }>();
    await upstream.database.db.updateTable('users').set({ name: 'Renamed Person', email: 'fed-renamed@example.com' }).where('id', '=', upstreamUser.id).execute();
    try {
      const browser = rp.newBrowser();
      const { result, request } = await throughUpstream(browser, 'fed-renamed@example.com');
      const tokens = await finishAtDownstream(browser, result, request);
      expect(tokens.claims()).toMatchObject({ sub: before.id, email: 'fed-renamed@example.com', name: 'Renamed Person' });
    } finally {
      await upstream.database.db.updateTable('users').set({ name: 'New Person', email: 'fed-new@example.com' }).where('id', '=', upstreamUser.id).execute();
    }
  });

  it('refuses to link an unverified email until the person signs in with their password once', async () => {
    const links = await linkCount();
    const browser = rp.newBrowser();
    const { result, request } = await throughUpstream(browser, 'fed-unverified@example.com');
    const login = asPage(result);
    expect(login.url.startsWith(downstream.issuer)).toBe(true);
    expect(login.doc.querySelector('.notice')?.text).toContain('fed-unverified@example.com');
    expect(await linkCount()).toBe(links);

    const afterPassword = await browser.submit(login, /\/login$/, { email: 'fed-unverified@example.com', password: TEST_PASSWORD });
    await finishAtDownstream(browser, afterPassword, request);
    expect(await linkCount()).toBe(links + 1);
    const shown = (await admin(downstream.databaseUrl, ['user', 'show', 'fed-unverified@example.com', '--json'])).json<{ links: { provider: string }[] }>();
    expect(shown.links.map((l) => l.provider)).toEqual(['upstream']);

    // Unlinking with the admin script takes it away again.
    expect((await admin(downstream.databaseUrl, ['user', 'unlink', 'fed-unverified@example.com', '--idp', 'upstream'])).code).toBe(0);
    expect(await linkCount()).toBe(links);
  });

  it('does not let a disabled user in through a provider', async () => {
    await admin(downstream.databaseUrl, ['user', 'disable', 'fed-disabled@example.com']);
    const browser = rp.newBrowser();
    const { result } = await throughUpstream(browser, 'fed-disabled@example.com');
    const page = asPage(result);
    expect(page.status).toBe(403);
    expect(page.doc.querySelector('h1')?.text).toBe('Signing in with Upstream did not work');
    expect(page.html).toContain('This account is disabled');
  });
});

describe('federation failures end on the error page with nothing written', () => {
  it('refuses a tampered state', async () => {
    const [users, links] = [await userCount(), await linkCount()];
    const browser = new Browser(`${downstream.issuer}/federation/callback`);
    const request = await rp.authorizationRequest();
    const page = asPage(await browser.request(request.url));
    const upstreamLogin = asPage(await browser.submit(page, /\/federated\/upstream$/));
    let result = await browser.submit(upstreamLogin, /\/login$/, { email: 'fed-new@example.com', password: UPSTREAM_PASSWORD });
    if (!('callback' in result)) result = await browser.submit(asPage(result), /\/confirm$/);
    const callback = asLanding(result);
    callback.searchParams.set('state', 'forged-state-value');
    const error = asPage(await new BrowserFrom(browser).request(callback.href));
    expect(error.status).toBe(400);
    expect(error.doc.querySelector('h1')?.text).toBe('Signing in with Upstream did not work');
    expect(error.doc.querySelector('a.button-link')?.getAttribute('href')).toMatch(/^\/interaction\/[\w-]+$/);
    expect([await userCount(), await linkCount()]).toEqual([users, links]);
  });

  it('refuses an ID token whose nonce does not match', async () => {
    const users = await userCount();
    const browser = new Browser(`${downstream.issuer}/federation/callback`);
    const request = await rp.authorizationRequest();
    const page = asPage(await browser.request(request.url));
    const upstreamLogin = asPage(await browser.submit(page, /\/federated\/upstream$/));
    // The flow expects another nonce than the one the upstream puts in the ID token.
    await downstream.database.db.updateTable('federation_flows').set({ nonce: 'not-the-nonce-that-was-sent' }).execute();
    let result = await browser.submit(upstreamLogin, /\/login$/, { email: 'fed-new@example.com', password: UPSTREAM_PASSWORD });
    if (!('callback' in result)) result = await browser.submit(asPage(result), /\/confirm$/);
    const error = asPage(await new BrowserFrom(browser).request(asLanding(result).href));
    expect(error.status).toBe(400);
    expect(error.html).toContain('could not be verified');
    expect(await userCount()).toBe(users);
  });

  it('shows the cancellation when the person denies at the upstream', async () => {
    const browser = rp.newBrowser();
    const { login } = await toUpstreamLogin(browser);
    const consent = asPage(await browser.submit(login, /\/login$/, { email: 'fed-linked@example.com', password: UPSTREAM_PASSWORD }));
    const error = asPage(await browser.submit(consent, /\/abort$/));
    expect(error.url.startsWith(downstream.issuer)).toBe(true);
    expect(error.html).toContain('The sign-in at Upstream was cancelled or refused.');
  });

  it('says the upstream is down, with a way back, and writes nothing', async () => {
    await admin(downstream.databaseUrl, ['idp', 'create', '--id', 'gone', '--name', 'Gone', '--issuer', 'http://127.0.0.1:9', '--client-id', 'x']);
    const [users, flows] = [await userCount(), await downstream.database.db.selectFrom('federation_flows').selectAll().execute()];
    const browser = rp.newBrowser();
    const page = asPage(await browser.request((await rp.authorizationRequest()).url));
    const error = asPage(await browser.submit(page, /\/federated\/gone$/));
    expect(error.status).toBe(502);
    expect(error.html).toContain('Gone could not be reached');
    expect(error.doc.querySelector('a.button-link')?.getAttribute('href')).toMatch(/^\/interaction\//);
    expect(await userCount()).toBe(users);
    expect(await downstream.database.db.selectFrom('federation_flows').selectAll().execute()).toEqual(flows);
    await admin(downstream.databaseUrl, ['idp', 'disable', 'gone']);
  });
});

describe('ID tokens a provider should never send are refused', () => {
  let fake: FakeUpstream;
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const claimsFor = (c: MintContext): JWTPayload => ({ iss: c.issuer, aud: c.clientId, sub: 'fake-subject', nonce: c.nonce, iat: c.now, exp: c.now + 300 });

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const created = await admin(downstream.databaseUrl, ['idp', 'create', '--id', 'fake', '--name', 'Fake', '--issuer', fake.issuer, '--client-id', 'latchkey', '--client-secret-stdin'], 'a fake upstream secret');
    expect(created.code, created.stderr).toBe(0);
  });
  afterAll(async () => {
    await admin(downstream.databaseUrl, ['idp', 'disable', 'fake']);
    await fake.close();
  });

  /** From the app to Latchkey's login page, on to the fake provider and straight back. */
  async function signInThroughFake(): Promise<Page> {
    const browser = rp.newBrowser();
    const page = asPage(await browser.request((await rp.authorizationRequest()).url));
    return asPage(await browser.submit(page, /\/federated\/fake$/));
  }

  it('gets as far as the account look-up with a valid one (the refusals below are about the token)', async () => {
    fake.mintWith((c) => validIdToken(c));
    const page = await signInThroughFake();
    expect(page.status).toBe(403);
    expect(page.html).toContain('There is no account for you here');
  });

  const forged: [string, (c: MintContext) => Promise<string>][] = [
    ['expired', (c) => c.sign({ ...claimsFor(c), iat: c.now - 900, exp: c.now - 300 })],
    ['issued for another app', (c) => c.sign({ ...claimsFor(c), aud: 'another-app' })],
    ['from another issuer', (c) => c.sign({ ...claimsFor(c), iss: 'https://impostor.example' })],
    ['without a subject', (c) => c.sign({ ...claimsFor(c), sub: undefined })],
    [
      'signed with a key the provider does not publish',
      async (c) => new SignJWT(claimsFor(c)).setProtectedHeader({ alg: 'RS256', kid: 'fake-1' }).sign((await generateKeyPair('RS256')).privateKey),
    ],
    ['unsigned', async (c) => `${encode({ alg: 'none' })}.${encode(claimsFor(c))}.`],
  ];
  it.each(forged)('refuses one that is %s, and writes nothing', async (_case, mint) => {
    fake.mintWith(mint);
    const [users, links] = [await userCount(), await linkCount()];
    const page = await signInThroughFake();
    expect(page.status).toBe(400);
    expect(page.html).toContain('The answer from Fake could not be verified');
    expect([await userCount(), await linkCount()]).toEqual([users, links]);
    const audited = await downstream.database.db.selectFrom('audit_events').select(['reason', 'outcome']).where('event', '=', 'sign_in.federated').orderBy('at', 'desc').executeTakeFirstOrThrow();
    expect(audited).toEqual({ reason: 'upstream_answer_invalid', outcome: 'failure' });
  });
});

describe('what a provider vouches for decides what is made and linked', () => {
  let fake: FakeUpstream;
  const tokenFor = (claims: JWTPayload) => (c: MintContext) => c.sign({ iss: c.issuer, aud: c.clientId, nonce: c.nonce, iat: c.now, exp: c.now + 300, ...claims });

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const created = await admin(
      downstream.databaseUrl,
      ['idp', 'create', '--id', 'open', '--name', 'Open', '--issuer', fake.issuer, '--client-id', 'latchkey', '--client-secret-stdin',
        '--allow-signup', '--link-by-verified-email', '--map-claim', 'roles', '--role-map', 'engineering=developer'],
      'a fake upstream secret',
    );
    expect(created.code, created.stderr).toBe(0);
  });
  afterAll(async () => {
    await admin(downstream.databaseUrl, ['idp', 'disable', 'open']);
    await fake.close();
  });

  /** From the app to Latchkey's login page and on to the provider, stopping before it answers. */
  async function startAtFake(): Promise<{ browser: Browser; authorize: URL }> {
    const browser = new Browser(`${fake.issuer}/authorize`);
    const page = asPage(await browser.request((await rp.authorizationRequest()).url));
    return { browser, authorize: asLanding(await browser.submit(page, /\/federated\/open$/)) };
  }
  /** The provider's answer (a fresh code each time), followed back into Latchkey. */
  async function answer(browser: Browser, authorize: URL): Promise<{ page: Page; browser: Browser }> {
    const onward = new BrowserFrom(browser);
    return { page: asPage(await onward.request(authorize.href)), browser: onward };
  }
  async function signInWith(claims: JWTPayload): Promise<{ page: Page; browser: Browser }> {
    fake.mintWith(tokenFor(claims));
    const { browser, authorize } = await startAtFake();
    return answer(browser, authorize);
  }

  it.each([false, undefined, 'true'])('makes no account from an email the provider does not say is verified (email_verified: %j)', async (verified) => {
    const [users, links] = [await userCount(), await linkCount()];
    const { page } = await signInWith({ sub: `squatter-${String(verified)}`, email: 'squatted@example.com', email_verified: verified });
    expect(page.status).toBe(403);
    expect(page.html).toContain('There is no account for you here');
    expect([await userCount(), await linkCount()]).toEqual([users, links]);
  });

  it('links automatically only when the Latchkey account has its email verified too', async () => {
    // Someone who never owned the address may have made this account; the owner must not be linked into it.
    await registerUser(downstream.databaseUrl, 'unproven@example.com');
    const links = await linkCount();
    const { page } = await signInWith({ sub: 'owner-of-unproven', email: 'unproven@example.com', email_verified: true });
    expect(page.doc.querySelector('.notice')?.text).toContain('unproven@example.com');
    expect(findForm(page, /\/login$/)).toBeTruthy();
    expect(await linkCount()).toBe(links);

    const proven = await registerUser(downstream.databaseUrl, 'proven@example.com', ['--email-verified']);
    const signedIn = await signInWith({ sub: 'owner-of-proven', email: 'proven@example.com', email_verified: true });
    expect(findForm(signedIn.page, /\/confirm$/)).toBeTruthy();
    const link = await downstream.database.db.selectFrom('user_links').select('user_id').where('provider_id', '=', 'open').where('subject', '=', 'owner-of-proven').executeTakeFirst();
    expect(link?.user_id).toBe(proven.id);
  });

  it('maps only role values the map names, not what every object inherits', async () => {
    const { page } = await signInWith({ sub: 'role-tricks', email: 'role-tricks@example.com', email_verified: true, roles: ['constructor', '__proto__', 'toString', 'engineering'] });
    expect(findForm(page, /\/confirm$/)).toBeTruthy();
    const shown = (await admin(downstream.databaseUrl, ['user', 'show', 'role-tricks@example.com', '--json'])).json<{ roles: string[] }>();
    expect(shown.roles).toEqual(['developer']);
  });

  it('answers a provider id the database cannot hold with not found', async () => {
    const browser = rp.newBrowser();
    const page = asPage(await browser.request((await rp.authorizationRequest()).url));
    const form = findForm(page, /\/federated\/open$/);
    const url = new URL(form.action.replace(/open$/, 'op%00en'), page.url);
    const error = asPage(await browser.request(url.href, { method: 'POST', body: new URLSearchParams(form.fields) }));
    expect(error.status).toBe(404);
  });

  it('takes each answer once: a kept flow cookie cannot replay a flow that ended in "link required"', async () => {
    await registerUser(downstream.databaseUrl, 'replayed@example.com');
    fake.mintWith(tokenFor({ sub: 'owner-of-replayed', email: 'replayed@example.com', email_verified: false }));
    const { browser, authorize } = await startAtFake();
    const flowCookie = browser.cookieHeader(new URL(`${downstream.issuer}/federation/callback`));
    const first = await answer(browser, authorize);
    expect(first.page.doc.querySelector('.notice')?.text).toContain('replayed@example.com');

    // The same state, nonce and verifier with a fresh code, for someone who would be signed in.
    fake.mintWith(tokenFor({ sub: 'replayer', email: 'replayer@example.com', email_verified: true }));
    const [users, links] = [await userCount(), await linkCount()];
    const fresh = (await fetch(authorize, { redirect: 'manual' })).headers.get('location')!;
    const replay = await fetch(fresh, { headers: { cookie: flowCookie, accept: 'text/html' }, redirect: 'manual' });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('does not match a sign-in started in this browser');
    expect([await userCount(), await linkCount()]).toEqual([users, links]);

    // The pending link is still there for the password sign-in.
    const afterPassword = asPage(await first.browser.submit(first.page, /\/login$/, { email: 'replayed@example.com', password: TEST_PASSWORD }));
    expect(findForm(afterPassword, /\/confirm$/)).toBeTruthy();
    const link = await downstream.database.db.selectFrom('user_links').select('subject').where('provider_id', '=', 'open').where('subject', '=', 'owner-of-replayed').executeTakeFirst();
    expect(link).toBeTruthy();
  });

  it('refuses the answer of a provider disabled after the sign-in started, and writes nothing', async () => {
    fake.mintWith(tokenFor({ sub: 'too-late', email: 'too-late@example.com', email_verified: true }));
    const { browser, authorize } = await startAtFake();
    const [users, links] = [await userCount(), await linkCount()];
    await admin(downstream.databaseUrl, ['idp', 'disable', 'open']);
    try {
      const { page } = await answer(browser, authorize);
      expect(page.status).toBe(403);
      expect(page.doc.querySelector('h1')?.text).toBe('Signing in with Open did not work');
      expect(page.html).toContain('Signing in with Open has been turned off');
      expect([await userCount(), await linkCount()]).toEqual([users, links]);
    } finally {
      await admin(downstream.databaseUrl, ['idp', 'enable', 'open']);
    }
  });

  it('does not make a waiting link once its provider is disabled; the password still signs in', async () => {
    await registerUser(downstream.databaseUrl, 'late-link@example.com');
    const { page, browser } = await signInWith({ sub: 'owner-of-late-link', email: 'late-link@example.com', email_verified: false });
    expect(page.doc.querySelector('.notice')?.text).toContain('late-link@example.com');
    await admin(downstream.databaseUrl, ['idp', 'disable', 'open']);
    try {
      const afterPassword = asPage(await browser.submit(page, /\/login$/, { email: 'late-link@example.com', password: TEST_PASSWORD }));
      expect(findForm(afterPassword, /\/confirm$/)).toBeTruthy();
      const link = await downstream.database.db.selectFrom('user_links').select('subject').where('subject', '=', 'owner-of-late-link').executeTakeFirst();
      expect(link).toBeUndefined();
    } finally {
      await admin(downstream.databaseUrl, ['idp', 'enable', 'open']);
    }
  });
  it.each([
    ['a sign-in', { sub: 'slow-answer', email: 'slow-answer@example.com', email_verified: true }],
    ['a link waiting for its password', { sub: 'slow-link', email: 'slow-link@example.com', email_verified: false }],
  ])('keeps no outcome of %s whose provider is disabled while it answers, and audits it', async (_, claims) => {
    if (claims.email === 'slow-link@example.com') await registerUser(downstream.databaseUrl, 'slow-link@example.com');
    const sign = tokenFor(claims);
    // The provider is disabled after the callback checked it and before it kept the answer.
    fake.mintWith(async (c) => {
      await admin(downstream.databaseUrl, ['idp', 'disable', 'open']);
      return sign(c);
    });
    const { browser, authorize } = await startAtFake();
    try {
      const { page } = await answer(browser, authorize);
      expect(page.status).toBe(403);
      expect(page.html).toContain('Signing in with Open has been turned off');
      const kept = await downstream.database.db.selectFrom('federation_flows').select('state').where('provider_id', '=', 'open').where((eb) => eb.or([eb('pending_subject', 'is not', null), eb('resolved_user_id', 'is not', null)])).execute();
      expect(kept).toEqual([]);
      // Refused as a provider found disabled earlier is, with an audit row naming what was made.
      const refusals = await downstream.database.db.selectFrom('audit_events').select(['user_id', 'details']).where('event', '=', 'sign_in.federated').where('reason', '=', 'provider_disabled').execute();
      const audited = refusals.map((r) => ({ userId: r.user_id, details: JSON.parse(r.details!) as Record<string, unknown> })).filter((r) => r.details.subject === claims.sub);
      expect(audited.map((a) => a.details)).toEqual([expect.objectContaining({ provider: 'open', subject: claims.sub })]);
      if (claims.email_verified) {
        const madeBySignUp = await downstream.database.db.selectFrom('users').select('id').where('email', '=', claims.email).executeTakeFirstOrThrow();
        expect(audited[0]).toMatchObject({ userId: madeBySignUp.id, details: { created: true } });
      }
    } finally {
      await admin(downstream.databaseUrl, ['idp', 'enable', 'open']);
    }
  });

  // Only PostgreSQL runs two transactions at once: SQLite has one writer.
  it.skipIf(testDialect !== 'postgres')('signs in, not fails, when a sign-up for the same person commits first', async () => {
    fake.mintWith(tokenFor({ sub: 'racer', email: 'racer@example.com', email_verified: true }));
    const { browser, authorize } = await startAtFake();
    await withOtherConnection(downstream.databaseUrl, async (other) => {
      // Another tab's sign-up, not yet committed when this one looks, so both make the account.
      await other.query('begin');
      await other.query("insert into users (id, email, email_verified, disabled, created_at, updated_at) values ('racer-first', 'racer@example.com', 1, 0, '2026-01-01', '2026-01-01')");
      await other.query("insert into user_links (provider_id, subject, user_id, created_at) values ('open', 'racer', 'racer-first', '2026-01-01')");
      const answered = answer(browser, authorize);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query('commit');
      const { page } = await answered;
      expect(findForm(page, /\/confirm$/)).toBeTruthy();
    });
    expect(await downstream.database.db.selectFrom('users').select('id').where('email', '=', 'racer@example.com').execute()).toEqual([{ id: 'racer-first' }]);
  });

  it('makes a waiting link once when two tabs finish it, and signs both in', async () => {
    await registerUser(downstream.databaseUrl, 'two-tabs@example.com');
    const first = await signInWith({ sub: 'owner-of-two-tabs', email: 'two-tabs@example.com', email_verified: false });
    const second = await signInWith({ sub: 'owner-of-two-tabs', email: 'two-tabs@example.com', email_verified: false });
    const [one, two] = await Promise.all(
      [first, second].map(async ({ page, browser }) => asPage(await browser.submit(page, /\/login$/, { email: 'two-tabs@example.com', password: TEST_PASSWORD }))),
    );
    expect(findForm(one!, /\/confirm$/)).toBeTruthy();
    expect(findForm(two!, /\/confirm$/)).toBeTruthy();
    const links = await downstream.database.db.selectFrom('user_links').select('user_id').where('subject', '=', 'owner-of-two-tabs').execute();
    expect(links).toHaveLength(1);
  });

  it('does not bring a waiting link back when its provider is enabled again', async () => {
    await registerUser(downstream.databaseUrl, 'relinked@example.com');
    const { page, browser } = await signInWith({ sub: 'owner-of-relinked', email: 'relinked@example.com', email_verified: false });
    expect(page.doc.querySelector('.notice')?.text).toContain('relinked@example.com');
    await admin(downstream.databaseUrl, ['idp', 'disable', 'open']);
    await admin(downstream.databaseUrl, ['idp', 'enable', 'open']);
    const afterPassword = asPage(await browser.submit(page, /\/login$/, { email: 'relinked@example.com', password: TEST_PASSWORD }));
    expect(findForm(afterPassword, /\/confirm$/)).toBeTruthy();
    const link = await downstream.database.db.selectFrom('user_links').select('subject').where('subject', '=', 'owner-of-relinked').executeTakeFirst();
    expect(link).toBeUndefined();
  });
});

describe('admin: identity providers', () => {
  it('deletes a provider with the sign-ins under way at it', async () => {
    expect((await admin(downstream.databaseUrl, ['idp', 'create', '--id', 'doomed', '--name', 'Doomed', '--issuer', 'http://127.0.0.1:9', '--client-id', 'x'])).code).toBe(0);
    await downstream.database.db
      .insertInto('federation_flows')
      .values({ state: 'doomed-flow', interaction_uid: 'i', provider_id: 'doomed', nonce: 'n', code_verifier: 'v', pending_subject: 's', pending_email: 'doomed@example.com', resolved_user_id: null, expires_at: 4_000_000_000 })
      .execute();
    expect((await admin(downstream.databaseUrl, ['idp', 'delete', 'doomed'])).code).toBe(0);
    expect(await downstream.database.db.selectFrom('federation_flows').select('state').where('provider_id', '=', 'doomed').execute()).toEqual([]);
  });

  it('lists, shows, disables and refuses bad input', async () => {
    const listed = (await admin(downstream.databaseUrl, ['idp', 'list', '--json'])).json<{ id: string; disabled: boolean }[]>();
    expect(listed.map((p) => p.id)).toEqual(expect.arrayContaining(['upstream', 'gone']));
    const shown = await admin(downstream.databaseUrl, ['idp', 'show', 'upstream'], '', { ISSUER: downstream.issuer });
    expect(shown.stdout).toContain(`${downstream.issuer}/federation/callback`);
    expect(shown.stdout).not.toContain(upstreamClient.clientSecret!);
    for (const [argv, message] of [
      [['idp', 'create', '--id', 'upstream', '--name', 'X', '--issuer', 'https://x.example.com', '--client-id', 'x'], /already exists/],
      [['idp', 'create', '--id', 'Bad Id', '--name', 'X', '--issuer', 'https://x.example.com', '--client-id', 'x'], /--id must be/],
      [['idp', 'create', '--id', 'plain', '--name', 'X', '--issuer', 'http://id.example.com', '--client-id', 'x'], /--issuer must use https/],
      [['idp', 'create', '--id', 'noscope', '--name', 'X', '--issuer', 'https://x.example.com', '--client-id', 'x', '--scope', 'email'], /must include openid/],
      [['idp', 'create', '--id', 'badmap', '--name', 'X', '--issuer', 'https://x.example.com', '--client-id', 'x', '--map-claim', 'groups', '--role-map', 'a=ghost'], /no role named ghost/],
      [['idp', 'show', 'nope'], /no identity provider with id nope/],
      [['user', 'unlink', 'fed-linked@example.com', '--idp', 'nope'], /has no link to nope/],
    ] as const) {
      const r = await admin(downstream.databaseUrl, [...argv]);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    // The client secret given on stdin is sealed, and never in the audit trail.
    const audit = await admin(downstream.databaseUrl, ['audit', '--json']);
    expect(audit.stdout).not.toContain(upstreamClient.clientSecret!);
    const row = await downstream.database.db.selectFrom('identity_providers').selectAll().where('id', '=', 'upstream').executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(upstreamClient.clientSecret!);
  });

  it('hides a disabled provider from the login page', async () => {
    await admin(downstream.databaseUrl, ['idp', 'disable', 'upstream']);
    try {
      const page = asPage(await rp.newBrowser().request((await rp.authorizationRequest()).url));
      expect(page.doc.querySelectorAll('.federation button')).toHaveLength(0);
    } finally {
      await admin(downstream.databaseUrl, ['idp', 'enable', 'upstream']);
    }
  });
});

/** The same browser (its cookies), now free to follow every redirect. */
class BrowserFrom extends Browser {
  constructor(from: Browser) {
    super('http://127.0.0.1:1/');
    Object.assign(this, { cookies: (from as unknown as { cookies: unknown[] }).cookies });
  }
}
