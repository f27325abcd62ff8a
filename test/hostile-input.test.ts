import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { registerApp, registerUser } from './helpers/admin.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { asPage } from './helpers/browser.ts';

let server: RunningServer;
let rp: RelyingParty;
let app: { clientId: string; clientSecret: string | null };

beforeAll(async () => {
  server = await startLatchkey();
  app = await registerApp(server.databaseUrl, REDIRECT_URI);
  await registerUser(server.databaseUrl, 'victim@example.com');
  rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(() => server.close());

const HOSTILE = [
  'x'.repeat(100_000),
  '\u0000',
  'a\u0000b',
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '<script>alert(1)</script>',
  '<%= process.exit() %>',
  '${process.exit()}',
  '{{constructor.constructor("return process")()}}',
  '\r\nSet-Cookie: injected=1',
  '%0d%0aLocation:%20https://evil.example',
  '🦀👩‍💻𝕏\u202e\ufeff',
  '../../../../etc/passwd',
  '__proto__',
  'constructor',
  '%zz%',
];

const ENDPOINTS: [string, string][] = [
  ['GET', '/auth'],
  ['GET', '/me'],
  ['POST', '/me'],
  ['POST', '/token'],
  ['POST', '/token/introspection'],
  ['POST', '/token/revocation'],
  ['POST', '/request'],
  ['POST', '/device/auth'],
  ['GET', '/device'],
  ['POST', '/device'],
  ['GET', '/session/end'],
  ['POST', '/session/end/confirm'],
  ['GET', '/jwks'],
  ['GET', '/.well-known/openid-configuration'],
  ['GET', '/interaction/abc'],
  ['POST', '/interaction/abc/login'],
  ['POST', '/interaction/abc/confirm'],
  ['POST', '/interaction/abc/abort'],
  ['GET', '/healthz'],
  ['GET', '/readyz'],
  ['GET', '/static/latchkey.css'],
];

const PARAMS = ['client_id', 'redirect_uri', 'scope', 'response_type', 'code', 'grant_type', 'token', 'state', 'nonce', 'email', 'password', 'csrf', 'user_code', 'resource', 'id_token_hint', 'client_secret', 'refresh_token', 'code_verifier', 'xsrf', 'logout'];

async function snapshot() {
  const db = server.database.db;
  const count = async (table: 'users' | 'clients' | 'roles' | 'keys' | 'apis') =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const users = await db.selectFrom('users').select(['id', 'email', 'password_hash', 'disabled']).orderBy('id').execute();
  return { users, clients: await count('clients'), roles: await count('roles'), keys: await count('keys'), apis: await count('apis') };
}

function expectNoLeak(status: number, body: string, what: string) {
  expect(status, what).toBeLessThan(500);
  expect(body, what).not.toMatch(/at [\w.<>]+ \(?(file:\/\/|\/)[^)]*:\d+:\d+/);
  expect(body, what).not.toMatch(/node_modules|TypeError|SyntaxError|ReferenceError/);
}

describe('hostile input', () => {
  it('never gets a 500, a stack trace, or a change to stored data, at any endpoint', async () => {
    const before = await snapshot();
    const basic = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`;
    for (const [method, path] of ENDPOINTS) {
      for (const value of HOSTILE) {
        const params = new URLSearchParams(PARAMS.map((p): [string, string] => [p, value]));
        const url = `${server.url}${path}${method === 'GET' ? `?${params}` : ''}`;
        for (const authorization of [undefined, basic, `Bearer ${value.slice(0, 2000)}`]) {
          let response: Response;
          try {
            response = await fetch(url, {
              method,
              redirect: 'manual',
              headers: {
                ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
                ...(authorization && /^[\x20-\x7e]*$/.test(authorization) ? { authorization } : {}),
                cookie: `_session=${encodeURIComponent(value.slice(0, 100))}; latchkey.csrf=${encodeURIComponent(value.slice(0, 100))}`,
              },
              body: method === 'POST' ? params : undefined,
            });
          } catch (err) {
            throw new Error(`${method} ${path} with ${JSON.stringify(value.slice(0, 40))}: ${(err as Error).message}`);
          }
          expectNoLeak(response.status, await response.text(), `${method} ${path} ${JSON.stringify(value.slice(0, 40))}`);
          expect(response.headers.get('set-cookie') ?? '').not.toContain('injected');
          const location = response.headers.get('location') ?? '';
          expect(location.startsWith('https://evil.example')).toBe(false);
        }
      }
    }
    expect(await snapshot()).toEqual(before);
    expect(server.logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('answers oversized bodies with 413 and malformed bodies with 400', async () => {
    const big = 'a='.concat('x'.repeat(2 * 1024 * 1024));
    for (const path of ['/token', '/interaction/abc/login', '/token/introspection', '/device/auth']) {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big });
      expect(response.status, path).toBe(413);
    }
    for (const [path, contentType, body] of [
      ['/token', 'application/json', '{"grant_type": '],
      ['/token', 'application/json', '{"grant_type":"client_credentials"}'],
      ['/token', 'text/plain', 'grant_type=client_credentials'],
      ['/token/introspection', 'application/x-www-form-urlencoded', '%E0%A4%A'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
      expect(response.status, `${path} ${contentType} ${body}`).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
    }
    const form = await fetch(`${server.url}/interaction/abc/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(form.status).toBe(415);
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    expect((await fetch(`${server.url}/definitely/not/here`)).status).toBe(404);
    expect((await fetch(`${server.url}/definitely/not/here`, { method: 'PROPFIND' })).status).toBe(404);
    for (const [method, path] of [
      ['PUT', '/token'],
      ['DELETE', '/token'],
      ['GET', '/token'],
      ['PATCH', '/jwks'],
      ['DELETE', '/.well-known/openid-configuration'],
      ['PUT', '/interaction/abc/login'],
      ['GET', '/interaction/abc/login'],
      ['POST', '/healthz'],
      ['PUT', '/token/introspection'],
      // A method no endpoint knows is refused the same way on the provider's paths.
      ['PROPFIND', '/token'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get('allow'), `${method} ${path}`).toBeTruthy();
    }
  });

  it('escapes a hostile login_hint on the page', async () => {
    const request = await rp.authorizationRequest('openid', { login_hint: '"><img src=x onerror=alert(1)>' });
    const page = asPage(await rp.newBrowser().request(request.url));
    expect(page.html).not.toContain('<img src=x');
    expect(page.doc.querySelector('input[name=email]')?.getAttribute('value')).toBe('"><img src=x onerror=alert(1)>');
  });
});
