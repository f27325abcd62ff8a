import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import { openDatabase, type OpenDatabase } from '../src/db/database.ts';
import { createRegistryCache, SHARED_READ_MS } from '../src/registry/registry-cache.ts';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin } from './helpers/admin.ts';
import { freshDatabasePerTest } from './helpers/database.ts';

const API = 'https://ledger.example.com';

describe('the registry cache', () => {
  const fresh = freshDatabasePerTest();
  const version = async () => (await fresh.database.db.selectFrom('registry_version').select('version').executeTakeFirstOrThrow()).version;
  /** A change to a registry table, which bumps the registry version. */
  const changeRegistry = () => sql`insert into roles (id, name, created_at) values ('r', 'r', '2026-01-01')`.execute(fresh.database.db);

  it('loads a value once per registry version, and again after any registry change', async () => {
    const cache = createRegistryCache(fresh.database.db, () => undefined);
    let loads = 0;
    const load = async () => ({ loaded: ++loads });
    expect(await cache.get(['k'], load)).toEqual({ loaded: 1 });
    expect(await cache.get(['k'], load)).toEqual({ loaded: 1 });
    // Not a registry table: nothing to forget.
    await sql`insert into audit_events (id, at, event, outcome) values ('a', '2026-01-01', 'x', 'success')`.execute(fresh.database.db);
    expect(await cache.get(['k'], load)).toEqual({ loaded: 1 });
    await changeRegistry();
    expect(await cache.get(['k'], load)).toEqual({ loaded: 2 });
  });

  /** A loader that returns how many times it has been called. */
  const countingLoad = () => {
    let loads = 0;
    return async () => ++loads;
  };

  it('keeps one version for the whole of a request', async () => {
    let request = {};
    let now = 0;
    const cache = createRegistryCache(fresh.database.db, () => request, () => now);
    const load = countingLoad();
    expect(await cache.get(['k'], load)).toBe(1);
    await changeRegistry();
    now += 5 * SHARED_READ_MS;
    // Still the same request, however long it takes: it keeps the version it started with.
    expect(await cache.get(['k'], load)).toBe(1);
    request = {};
    expect(await cache.get(['k'], load)).toBe(2);
  });

  it('hands a request the cached value itself once its version is known, with no turn of its own', async () => {
    const request = {};
    const cache = createRegistryCache(fresh.database.db, () => request);
    const load = countingLoad();
    expect(await cache.get(['k'], load)).toBe(1);
    const first = cache.get(['k'], load);
    expect(cache.get(['k'], load)).toBe(first);
    expect(await first).toBe(1);
    // Another request reads its own version first.
    const another = createRegistryCache(fresh.database.db, () => ({})).get(['k'], load);
    expect(another).not.toBe(first);
    // Settled before the test's database goes away.
    await another;
  });

  it('shares a version read among requests starting within a millisecond, and honours a change after it', async () => {
    let request = {};
    let now = 1000;
    const cache = createRegistryCache(fresh.database.db, () => request, () => now);
    const load = countingLoad();
    expect(await cache.get(['k'], load)).toBe(1);
    await changeRegistry();
    // A request starting within the bound of that read shares it ...
    request = {};
    now += SHARED_READ_MS / 2;
    expect(await cache.get(['k'], load)).toBe(1);
    // ... and the first one starting past it reads the version again and sees the change.
    request = {};
    now += SHARED_READ_MS / 2;
    expect(await cache.get(['k'], load)).toBe(2);
    // A clock going back shares nothing.
    request = {};
    now -= 10 * SHARED_READ_MS;
    await sql`insert into roles (id, name, created_at) values ('r2', 'r2', '2026-01-01')`.execute(fresh.database.db);
    expect(await cache.get(['k'], load)).toBe(3);
    // Outside a request, every look-up reads the version (the admin script's provider).
    const outside = createRegistryCache(fresh.database.db, () => undefined, () => now);
    expect(await outside.get(['k'], load)).toBe(4);
    await sql`delete from roles where id = 'r'`.execute(fresh.database.db);
    expect(await outside.get(['k'], load)).toBe(5);
  });

  it('hands out values no caller can change, and forgets failed loads', async () => {
    const cache = createRegistryCache(fresh.database.db, () => undefined);
    const value = await cache.get(['k'], async () => ({ list: ['a'] }));
    expect(() => value.list.push('b')).toThrow(TypeError);
    await expect(cache.get(['bad'], async () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    expect(await cache.get(['bad'], async () => 'recovered')).toBe('recovered');
  });

  it('does not remember what was not found, so made-up keys cannot fill it', async () => {
    const cache = createRegistryCache(fresh.database.db, () => undefined);
    let loads = 0;
    const missing = async () => (loads++, undefined);
    await cache.get(['client', 'no-such-client'], missing);
    await cache.get(['client', 'no-such-client'], missing);
    expect(loads).toBe(2);
  });

  it('starts afresh when the version goes down, as after a restore from backup', async () => {
    const cache = createRegistryCache(fresh.database.db, () => undefined);
    let loads = 0;
    const load = async () => ++loads;
    await sql`update registry_version set version = 500`.execute(fresh.database.db);
    expect(await cache.get(['k'], load)).toBe(1);
    await sql`update registry_version set version = 480`.execute(fresh.database.db);
    expect(await cache.get(['k'], load)).toBe(2);
    // Back at the version it once saw: what was cached then is gone for good.
    await sql`update registry_version set version = 500`.execute(fresh.database.db);
    expect(await cache.get(['k'], load)).toBe(3);
  });

  it('keys by every part, so no two keys collide', async () => {
    const cache = createRegistryCache(fresh.database.db, () => undefined);
    expect(await cache.get(['a', 'b c'], async () => 1)).toBe(1);
    expect(await cache.get(['a b', 'c'], async () => 2)).toBe(2);
  });

  it('is told of changes to every registry table, whoever makes them', async () => {
    let before = await version();
    const step = async (...argv: string[]) => {
      const result = await admin(fresh.url, argv, 'a passphrase nobody else uses\n');
      expect(result.code, result.stderr).toBe(0);
      const after = await version();
      expect(after, argv.join(' ')).toBeGreaterThan(before);
      before = after;
      return result;
    };
    await step('api', 'create', '--identifier', API, '--name', 'Ledger', '--scope', 'ledger:read');
    await step('api', 'add-scope', API, '--scope', 'ledger:write');
    await step('role', 'create', 'bookkeeper');
    await step('role', 'grant', 'bookkeeper', '--api', API, '--permission', 'ledger:read');
    const { clientId } = (await step('client', 'create', '--service', '--name', 'Books', '--json')).json<{ clientId: string }>();
    await step('role', 'assign', 'bookkeeper', '--client', clientId);
    await step('user', 'create', '--email', 'keeper@example.com', '--password-stdin', '--role', 'bookkeeper');
    // Plain SQL on each table (children first, so each statement has rows to delete).
    for (const table of ['client_roles', 'user_roles', 'role_permissions', 'api_scopes', 'apis', 'clients', 'roles'] as const) {
      await sql`delete from ${sql.table(table)}`.execute(fresh.database.db);
      const after = await version();
      expect(after, `delete from ${table}`).toBeGreaterThan(before);
      before = after;
    }
  });
});

describe('a running server', () => {
  let server: RunningServer;
  let plainSql: OpenDatabase;
  const run = (...argv: string[]) => admin(server.databaseUrl, argv);

  beforeAll(async () => {
    server = await startLatchkey();
    plainSql = openDatabase(server.databaseUrl);
    await run('api', 'create', '--identifier', API, '--name', 'Ledger', '--scope', 'ledger:read', '--scope', 'ledger:write');
    await run('role', 'create', 'bookkeeper');
    await run('role', 'grant', 'bookkeeper', '--api', API, '--permission', 'ledger:read', '--permission', 'ledger:write');
  });
  afterAll(async () => {
    await plainSql.close();
    await server.close();
  });

  async function newService() {
    const created = (await run('client', 'create', '--service', '--name', 'Books', '--json')).json<{ clientId: string; clientSecret: string }>();
    await run('role', 'assign', 'bookkeeper', '--client', created.clientId);
    return created;
  }

  function tokenRequest(clientId: string, secret: string, resource = API) {
    return fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'ledger:read ledger:write' }),
    });
  }

  async function grantedScopes(clientId: string, secret: string): Promise<{ scope: string[]; roles: unknown }> {
    const response = await tokenRequest(clientId, secret);
    expect(response.status).toBe(200);
    const claims = decodeJwt(((await response.json()) as { access_token: string }).access_token);
    return { scope: String(claims.scope ?? '').split(' ').filter(Boolean).sort(), roles: claims.roles };
  }

  it('refuses a rotated secret from the next request on', async () => {
    const service = await newService();
    expect((await tokenRequest(service.clientId, service.clientSecret)).status).toBe(200);
    const rotated = (await run('client', 'rotate-secret', service.clientId, '--json')).json<{ clientSecret: string }>();
    const old = await tokenRequest(service.clientId, service.clientSecret);
    expect(old.status).toBe(401);
    expect(((await old.json()) as { error: string }).error).toBe('invalid_client');
    expect((await tokenRequest(service.clientId, rotated.clientSecret)).status).toBe(200);
  });

  it('refuses a deleted client from the next request on', async () => {
    const service = await newService();
    expect((await tokenRequest(service.clientId, service.clientSecret)).status).toBe(200);
    await run('client', 'delete', service.clientId);
    expect((await tokenRequest(service.clientId, service.clientSecret)).status).toBe(401);
  });

  it('follows roles, permissions and API scopes as they change', async () => {
    const service = await newService();
    expect(await grantedScopes(service.clientId, service.clientSecret)).toEqual({ scope: ['ledger:read', 'ledger:write'], roles: ['bookkeeper'] });
    await run('role', 'ungrant', 'bookkeeper', '--api', API, '--permission', 'ledger:write');
    expect(await grantedScopes(service.clientId, service.clientSecret)).toEqual({ scope: ['ledger:read'], roles: ['bookkeeper'] });
    await run('role', 'grant', 'bookkeeper', '--api', API, '--permission', 'ledger:write');
    await run('api', 'remove-scope', API, '--scope', 'ledger:read');
    expect(await grantedScopes(service.clientId, service.clientSecret)).toEqual({ scope: ['ledger:write'], roles: ['bookkeeper'] });
    await run('role', 'revoke', 'bookkeeper', '--client', service.clientId);
    expect((await grantedScopes(service.clientId, service.clientSecret)).scope).toEqual([]);
    await run('api', 'add-scope', API, '--scope', 'ledger:read');
  });

  it('gives out one instance of a client while nothing registered changes, however many others are looked up', async () => {
    const service = await newService();
    const row = await plainSql.db.selectFrom('clients').selectAll().where('client_id', '=', service.clientId).executeTakeFirstOrThrow();
    // More than oidc-provider's own cache of client instances holds (at most twice 100).
    const others = Array.from({ length: 250 }, (_, i) => `${service.clientId}-other-${i}`);
    await plainSql.db
      .insertInto('clients')
      .values(others.map((clientId) => ({ ...row, client_id: clientId })))
      .execute();
    const { Client } = server.provider;
    const first = await Client.find(service.clientId);
    expect(first?.clientId).toBe(service.clientId);
    for (const id of others) expect((await Client.find(id))?.clientId).toBe(id);
    expect(await Client.find(service.clientId)).toBe(first);

    const rotated = (await run('client', 'rotate-secret', service.clientId, '--json')).json<{ clientSecret: string }>();
    const after = await Client.find(service.clientId);
    expect(after).not.toBe(first);
    expect(after?.clientSecret).not.toBe(first?.clientSecret);
    expect((await tokenRequest(service.clientId, rotated.clientSecret)).status).toBe(200);
    await plainSql.db.deleteFrom('clients').where('client_id', 'in', others).execute();
  });

  it('knows no client by an id that is not stored, and refuses it at the token endpoint', async () => {
    expect(await server.provider.Client.find('not-a-stored-client')).toBeUndefined();
    const response = await tokenRequest('not-a-stored-client', 'any secret at all');
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('honours a change made with plain SQL, and a deleted API', async () => {
    const service = await newService();
    expect((await tokenRequest(service.clientId, service.clientSecret)).status).toBe(200);
    await plainSql.db.deleteFrom('client_roles').where('client_id', '=', service.clientId).execute();
    // A change is honoured by requests starting SHARED_READ_MS after it; this one is quick enough to beat that.
    await new Promise((resolve) => setTimeout(resolve, 2 * SHARED_READ_MS));
    expect((await grantedScopes(service.clientId, service.clientSecret)).scope).toEqual([]);
    expect((await run('api', 'delete', API)).code).toBe(0);
    const response = await tokenRequest(service.clientId, service.clientSecret);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_target');
  });
});
