import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/db/database.ts';
import { testDialect } from './helpers/database.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPage } from './helpers/browser.ts';

let server: RunningServer;
let file: string;

beforeAll(async () => {
  server = await startLatchkey();
  file = server.databaseUrl;
});
afterAll(() => server.close());

const count = async (table: 'clients' | 'users' | 'roles' | 'user_roles') =>
  Number((await server.database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

/** Runs a command that must fail: non-zero exit, one line on stderr naming the problem, nothing written. */
async function refused(argv: string[], problem: RegExp, stdin = '') {
  const tables = ['clients', 'users', 'roles', 'user_roles'] as const;
  const before = await Promise.all(tables.map(count));
  const result = await admin(file, argv, stdin);
  expect(result.code).not.toBe(0);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(problem);
  expect(result.stdout).toBe('');
  expect(await Promise.all(tables.map(count))).toEqual(before);
}

async function signInFails(rp: RelyingParty, email: string, password: string) {
  const request = await rp.authorizationRequest();
  const browser = rp.newBrowser();
  const login = asPage(await browser.request(request.url));
  const result = await browser.submit(login, /\/login$/, { email, password });
  expect('callback' in result).toBe(false);
  expect(asPage(result).html).toContain('The email or password is not correct.');
}

describe('admin: clients', () => {
  it('creates a confidential client, shows its secret once and stores only a digest', async () => {
    const result = await admin(file, ['client', 'create', '--name', 'Invoices', '--redirect-uri', REDIRECT_URI, '--post-logout-redirect-uri', 'http://127.0.0.1:1/bye']);
    expect(result.code).toBe(0);
    const clientId = /client_id:\s+(\S+)/.exec(result.stdout)![1]!;
    const secret = /client_secret:\s+(\S+)/.exec(result.stdout)![1]!;
    expect(secret.length).toBeGreaterThanOrEqual(43);
    const row = await server.database.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(JSON.parse(row.post_logout_redirect_uris)).toEqual(['http://127.0.0.1:1/bye']);

    const shown = await admin(file, ['client', 'show', clientId, '--json']);
    expect(shown.json()).toMatchObject({ clientId, name: 'Invoices', public: false, redirectUris: [REDIRECT_URI] });
    expect(shown.stdout).not.toContain(secret);

    const listed = await admin(file, ['client', 'list', '--json']);
    expect(listed.json<{ clientId: string }[]>().map((c) => c.clientId)).toContain(clientId);
  });

  it('makes client ids of letters and digits, so none reads as an option on a command line', async () => {
    const ids = await Promise.all(Array.from({ length: 40 }, async () => (await registerApp(file, REDIRECT_URI, ['--public'])).clientId));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('refuses bad client input with one line and writes nothing', async () => {
    await refused(['client', 'create', '--redirect-uri', REDIRECT_URI], /--name is required/);
    await refused(['client', 'create', '--name', 'X'], /at least one --redirect-uri/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', '/relative/callback'], /absolute URL/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', 'not a url'], /absolute URL/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', 'https://app.example/cb#frag'], /fragment/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', 'javascript:alert(1)'], /must use https/);
    for (const [option, uri] of [['--redirect-uri', 'http://app.example/cb'], ['--redirect-uri', 'http://10.0.0.5/cb'], ['--post-logout-redirect-uri', 'http://app.example/'], ['--backchannel-logout-uri', 'http://app.example/logout']]) {
      await refused(['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT_URI, option!, uri!], /must use https \(plain http only on loopback\)/);
    }
    await refused(['client', 'create', '--service', '--name', 'X', '--jwks-uri', 'http://keys.example/jwks.json'], /--jwks-uri must use https/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT_URI, '--grant-type', 'password'], /unknown grant type "password"/);
    await refused(['client', 'create', '--name', 'X', '--public', '--grant-type', 'client_credentials'], /public client .* cannot use client_credentials/);
    await refused(['client', 'create', '--service', '--name', 'X', '--auth-method', 'none'], /public client .* cannot use client_credentials/);
    await refused(['client', 'create', '--name', 'X', '--grant-type', 'client_credentials', '--auth-method', 'none'], /public client .* cannot use client_credentials/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT_URI, '--scope', 'openid admin'], /unknown scope "admin"/);
    await refused(['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT_URI, '--colour', 'red'], /Unknown option '--colour'/);
    await refused(['client', 'show', 'no-such-client'], /no client with id no-such-client/);
    await refused(['client', 'delete', 'no-such-client'], /no client with id no-such-client/);
    await refused(['client', 'rotate-secret', 'no-such-client'], /no client with id no-such-client/);
    await refused(['client', 'show'], /expected 1 argument/);
    await refused(['client', 'explode'], /unknown command "client explode"/);
  });

  it('rotates a secret: the old one stops working, the new one works', async () => {
    const app = await registerApp(file, REDIRECT_URI);
    await registerUser(file, 'rotate@example.com');
    const rotated = await admin(file, ['client', 'rotate-secret', app.clientId, '--json']);
    expect(rotated.code).toBe(0);
    const { clientSecret } = rotated.json<{ clientSecret: string }>();
    expect(clientSecret).not.toBe(app.clientSecret);

    const oldRp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
    const request = await oldRp.authorizationRequest();
    const callback = await oldRp.authorize(oldRp.newBrowser(), request, 'rotate@example.com', TEST_PASSWORD);
    await expect(oldRp.exchange(callback, request)).rejects.toThrow();
    const newRp = await RelyingParty.discover(server.issuer, app.clientId, clientSecret);
    const tokens = await newRp.exchange(callback, request);
    expect(tokens.id_token).toBeTruthy();

    const publicApp = await registerApp(file, REDIRECT_URI, ['--public']);
    await refused(['client', 'rotate-secret', publicApp.clientId], /has no secret \(it authenticates with none\)/);
  });

  it('updates what the pages show of a client, and refuses unsafe logos and links', async () => {
    const app = await registerApp(file, REDIRECT_URI);
    const updated = await admin(file, ['client', 'update', app.clientId, '--name', 'Renamed', '--logo-uri', 'https://cdn.example.com/logo.png', '--policy-uri', 'https://example.com/privacy', '--json']);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.json()).toMatchObject({ name: 'Renamed', logoUri: 'https://cdn.example.com/logo.png', policyUri: 'https://example.com/privacy', tosUri: null });
    expect((await admin(file, ['client', 'update', app.clientId, '--policy-uri', '', '--json'])).json()).toMatchObject({ policyUri: null });
    await refused(['client', 'update', app.clientId, '--logo-uri', 'javascript:alert(1)'], /--logo-uri must be an https URL/);
    await refused(['client', 'update', app.clientId, '--logo-uri', 'http://cdn.example.com/logo.png'], /--logo-uri must be an https URL/);
    await refused(['client', 'update', app.clientId, '--logo-uri', 'data:text/html;base64,PHNjcmlwdD4='], /--logo-uri must be an https URL/);
    await refused(['client', 'update', app.clientId, '--tos-uri', 'ftp://example.com/terms'], /--tos-uri must be an absolute http\(s\) URL/);
    await refused(['client', 'update', app.clientId], /nothing to update/);
    await refused(['client', 'update', 'no-such-client', '--name', 'X'], /no client with id/);
    expect((await admin(file, ['client', 'show', app.clientId, '--json'])).json()).toMatchObject({ name: 'Renamed', logoUri: 'https://cdn.example.com/logo.png' });
  });

  it('deletes a client: it can no longer start a sign-in', async () => {
    const app = await registerApp(file, REDIRECT_URI);
    const rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
    const deleted = await admin(file, ['client', 'delete', app.clientId]);
    expect(deleted.code).toBe(0);
    const request = await rp.authorizationRequest();
    const page = asPage(await rp.newBrowser().request(request.url));
    expect(page.status).toBe(400);
    expect(page.html).toContain('Unknown application');
    const listed = await admin(file, ['client', 'list', '--json']);
    expect(listed.json<{ clientId: string }[]>().map((c) => c.clientId)).not.toContain(app.clientId);
  });
});

describe('admin: users', () => {
  let rp: RelyingParty;
  beforeAll(async () => {
    const app = await registerApp(file, REDIRECT_URI);
    rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
  });

  it('creates a user who can sign in, with email lower-cased', async () => {
    const created = await admin(file, ['user', 'create', '--email', 'Linus@Example.com', '--name', 'Linus', '--password-stdin', '--json'], `${TEST_PASSWORD}\n`);
    expect(created.code).toBe(0);
    expect(created.json()).toMatchObject({ email: 'linus@example.com', name: 'Linus', disabled: false, roles: [] });
    const row = await server.database.db.selectFrom('users').selectAll().where('email', '=', 'linus@example.com').executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    const tokens = await rp.signIn('LINUS@example.com', TEST_PASSWORD);
    expect(tokens.claims()?.sub).toBe(row.id);
  });

  it('refuses bad user input with one line and writes nothing', async () => {
    await registerUser(file, 'taken@example.com');
    await refused(['user', 'create', '--email', 'TAKEN@example.com', '--password-stdin'], /already exists/, TEST_PASSWORD);
    await refused(['user', 'create', '--email', 'weak@example.com', '--password-stdin'], /at least 12 characters/, 'short');
    await refused(['user', 'create', '--email', 'same@example.com', '--password-stdin'], /must not be the email/, 'same@example.com');
    await refused(['user', 'create', '--email', 'not-an-email', '--password-stdin'], /not an email address/, TEST_PASSWORD);
    await refused(['user', 'create', '--email', 'roles@example.com', '--role', 'ghost', '--password-stdin'], /no role named ghost/, TEST_PASSWORD);
    await refused(['user', 'create', '--email', 'tty@example.com'], /--password-stdin/);
    await refused(['user', 'show', 'nobody@example.com'], /no user with email nobody@example.com/);
    await refused(['user', 'disable', 'nobody@example.com'], /no user with email/);
    await refused(['user', 'enable', 'nobody@example.com'], /no user with email/);
    await refused(['user', 'set-password', 'nobody@example.com', '--password-stdin'], /no user with email/, TEST_PASSWORD);
    await refused(['user', 'set-password', 'taken@example.com', '--password-stdin'], /at least 12 characters/, 'tiny');
  });

  it('lists and shows users with their roles', async () => {
    await admin(file, ['role', 'create', 'auditor', '--description', 'Reads the books']);
    await registerUser(file, 'shown@example.com', ['--role', 'auditor', '--name', 'Shown']);
    const shown = await admin(file, ['user', 'show', 'shown@example.com']);
    expect(shown.stdout).toMatch(/roles:\s+auditor/);
    const listed = await admin(file, ['user', 'list', '--json']);
    expect(listed.json<{ email: string; roles: string[] }[]>().find((u) => u.email === 'shown@example.com')?.roles).toEqual(['auditor']);
  });

  it('disables a user: no sign-in and no refresh; enabling restores sign-in', async () => {
    await registerUser(file, 'paused@example.com');
    const browser = rp.newBrowser();
    const request = await rp.authorizationRequest('openid offline_access');
    const tokens = await rp.exchange(await rp.authorize(browser, request, 'paused@example.com', TEST_PASSWORD), request);
    expect((await admin(file, ['user', 'disable', 'paused@example.com'])).code).toBe(0);
    await signInFails(rp, 'paused@example.com', TEST_PASSWORD);
    // The browser's existing session no longer signs them in silently.
    const again = await browser.request((await rp.authorizationRequest()).url);
    expect('callback' in again).toBe(false);
    expect(asPage(again).doc.querySelector('input[name=password]')).toBeTruthy();
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await admin(file, ['user', 'enable', 'paused@example.com'])).code).toBe(0);
    expect((await rp.signIn('paused@example.com', TEST_PASSWORD)).id_token).toBeTruthy();
  });

  it('asks a session whose account became unavailable to sign in again, rather than failing', async () => {
    const user = await registerUser(file, 'vanished@example.com');
    const browser = rp.newBrowser();
    await rp.authorize(browser, await rp.authorizationRequest(), 'vanished@example.com', TEST_PASSWORD);
    // Disabled behind the admin script's back: the session row survives, the account does not.
    await server.database.db.updateTable('users').set({ disabled: 1 }).where('id', '=', user.id).execute();
    const again = asPage(await browser.request((await rp.authorizationRequest()).url));
    expect(again.status).toBe(200);
    expect(again.doc.querySelector('input[name=password]')).toBeTruthy();
  });

  it('sets a new password: the old one stops working', async () => {
    await registerUser(file, 'changer@example.com');
    const newPassword = 'a much better passphrase';
    const changed = await admin(file, ['user', 'set-password', 'changer@example.com', '--password-stdin'], `${newPassword}\n`);
    expect(changed.code).toBe(0);
    await signInFails(rp, 'changer@example.com', TEST_PASSWORD);
    expect((await rp.signIn('changer@example.com', newPassword)).id_token).toBeTruthy();
  });
});

describe('admin: roles', () => {
  it('creates, lists, assigns and revokes roles, reflected in the roles claim', async () => {
    const app = await registerApp(file, REDIRECT_URI);
    const rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
    await registerUser(file, 'member@example.com');
    expect((await admin(file, ['role', 'create', 'editor', '--description', 'Edits things'])).code).toBe(0);
    expect((await admin(file, ['role', 'assign', 'editor', '--user', 'member@example.com'])).code).toBe(0);
    const listed = await admin(file, ['role', 'list', '--json']);
    expect(listed.json<{ name: string; members: number; description: string }[]>().find((r) => r.name === 'editor')).toMatchObject({
      members: 1,
      description: 'Edits things',
    });
    expect((await rp.signIn('member@example.com', TEST_PASSWORD, 'openid roles')).claims()?.roles).toEqual(['editor']);

    expect((await admin(file, ['role', 'revoke', 'editor', '--user', 'member@example.com'])).code).toBe(0);
    expect((await rp.signIn('member@example.com', TEST_PASSWORD, 'openid roles')).claims()?.roles).toEqual([]);
  });

  it('refuses bad role input with one line and writes nothing', async () => {
    await admin(file, ['role', 'create', 'viewer']);
    await registerUser(file, 'roleless@example.com');
    await refused(['role', 'create', 'viewer'], /already exists/);
    await refused(['role', 'create', 'has spaces'], /role name must be/);
    await refused(['role', 'assign', 'ghost', '--user', 'roleless@example.com'], /no role named ghost/);
    await refused(['role', 'assign', 'viewer', '--user', 'nobody@example.com'], /no user with email/);
    await refused(['role', 'assign', 'viewer'], /--user EMAIL or --client ID is required/);
    await refused(['role', 'revoke', 'ghost', '--user', 'roleless@example.com'], /no role named ghost/);
  });
});

describe('admin: database', () => {
  it('reports migrations as applied and has nothing left to migrate', async () => {
    const status = await admin(file, ['db', 'status', '--json']);
    expect(status.code).toBe(0);
    const migrations = status.json<{ name: string; applied: boolean }[]>();
    expect(migrations.map((m) => m.name)).toContain('0001_initial');
    expect(migrations.every((m) => m.applied)).toBe(true);
    const migrate = await admin(file, ['db', 'migrate']);
    expect(migrate.code).toBe(0);
    expect(migrate.stdout.trim()).toBe('database is up to date');
  });

  it('backs SQLite up online into a new file, and points PostgreSQL to pg_dump', async () => {
    await registerUser(file, 'backed-up@example.com');
    const target = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-backup-')), 'copy.sqlite');
    const result = await admin(file, ['db', 'backup', target]);
    if (testDialect === 'postgres') {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/pg_dump/);
      return;
    }
    expect(result.code, result.stderr).toBe(0);
    const copy = openDatabase(target);
    try {
      const row = await copy.db.selectFrom('users').select('email').where('email', '=', 'backed-up@example.com').executeTakeFirst();
      expect(row?.email).toBe('backed-up@example.com');
    } finally {
      await copy.close();
    }
    const again = await admin(file, ['db', 'backup', target]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
  });
});

describe('admin: help and the real script', () => {
  it('has --help for every command', async () => {
    const overview = await admin(file, ['--help']);
    expect(overview.code).toBe(0);
    const commands = [...overview.stdout.matchAll(/^ {2}(\w+) ([\w-]+)/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(commands.length).toBeGreaterThanOrEqual(17);
    for (const [group, name] of commands) {
      const help = await admin(file, [group, name, '--help']);
      expect(help.code, `${group} ${name} --help`).toBe(0);
      expect(help.stdout).toContain(`admin -- ${group} ${name}`);
    }
  });

  it('runs as a script: reads the password from stdin and exits non-zero on errors', () => {
    const env = { ...process.env, DATABASE_URL: file };
    const ok = spawnSync(process.execPath, ['scripts/admin.ts', 'user', 'create', '--email', 'script@example.com', '--password-stdin', '--json'], {
      env,
      input: `${TEST_PASSWORD}\n`,
      encoding: 'utf8',
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).email).toBe('script@example.com');
    const dup = spawnSync(process.execPath, ['scripts/admin.ts', 'user', 'create', '--email', 'script@example.com', '--password-stdin'], {
      env,
      input: `${TEST_PASSWORD}\n`,
      encoding: 'utf8',
    });
    expect(dup.status).toBe(1);
    expect(dup.stderr.trim()).toBe('error: a user with email script@example.com already exists');
  });
});
