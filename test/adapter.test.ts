import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { createAdapterFactory, purgeExpiredPayloads } from '../src/oidc/adapter.ts';
import type { Clock } from '../src/time.ts';
import { createSecretBox } from '../src/keys/secret-box.ts';
import { createRegistryCache, type RegistryCache } from '../src/registry/registry-cache.ts';
import { createTestDatabase, testDialect, type TestDatabase } from './helpers/database.ts';

let database: OpenDatabase;
let testDatabase: TestDatabase;
let options: { refreshTokenReuseGrace: number; secretBox: ReturnType<typeof createSecretBox>; registry: RegistryCache };
let now: Date;
const clock: Clock = { now: () => now };

beforeEach(async () => {
  testDatabase = await createTestDatabase();
  database = openDatabase(testDatabase.url);
  await migrateToLatest(database.db);
  options = { refreshTokenReuseGrace: 0, secretBox: createSecretBox('a test key-encryption secret, 32+ chars'), registry: createRegistryCache(database.db, () => undefined) };
  now = new Date('2026-01-01T00:00:00Z');
});
afterEach(async () => {
  await database.close();
  await testDatabase.drop();
});

const later = (seconds: number) => {
  now = new Date(now.getTime() + seconds * 1000);
};

describe('the provider storage adapter', () => {

  it.skipIf(testDialect !== 'sqlite')('commits the writes of one turn together on SQLite', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const tokens = new Adapter('AccessToken');
    // Each commit appends the pages it changed to the write-ahead log; writes committed
    // together append each page once.
    const walGrowth = async (write: () => Promise<unknown>) => {
      database.sqlite!.pragma('wal_checkpoint(TRUNCATE)');
      await write();
      return fs.statSync(`${testDatabase.url}-wal`).size;
    };
    const ids = Array.from({ length: 10 }, (_, i) => `token-${i}`);
    const oneByOne = await walGrowth(async () => {
      for (const id of ids) await tokens.upsert(`${id}-alone`, { accountId: 'u1', grantId: 'g1' }, 60);
    });
    const together = await walGrowth(() => Promise.all(ids.map((id) => tokens.upsert(id, { accountId: 'u1', grantId: 'g1' }, 60))));
    expect(together).toBeGreaterThan(0);
    expect(together).toBeLessThan(oneByOne / 3);
  });

  it.skipIf(testDialect !== 'sqlite')('shows a look-up what a request just before it changed, before that change commits', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const codes = new Adapter('AuthorizationCode');
    const tokens = new Adapter('AccessToken');
    const sessions = new Adapter('Session');
    await codes.upsert('c', { accountId: 'u1', grantId: 'g1' }, 60);
    await tokens.upsert('t', { accountId: 'u1', grantId: 'g1' }, 60);
    await sessions.upsert('s', { accountId: 'u1', uid: 'session-uid' }, 60);

    // Each write is awaited only after the look-up is made, as with two requests arriving in
    // one turn: a replayed code must be seen consumed, a revoked grant's token gone.
    const consumed = codes.consume('c');
    expect((await codes.find('c'))?.consumed).toBeDefined();
    const revoked = tokens.revokeByGrantId('g1');
    expect(await tokens.find('t')).toBeUndefined();
    const ended = sessions.destroy('s');
    expect(await sessions.findByUid('session-uid')).toBeUndefined();
    await Promise.all([consumed, revoked, ended]);
  });
  it('stores, finds and overwrites payloads per model', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const codes = new Adapter('AuthorizationCode');
    const tokens = new Adapter('AccessToken');
    await codes.upsert('a', { accountId: 'u1', grantId: 'g1' }, 60);
    await tokens.upsert('a', { accountId: 'u2', grantId: 'g2' }, 60);
    expect(await codes.find('a')).toMatchObject({ accountId: 'u1' });
    expect(await tokens.find('a')).toMatchObject({ accountId: 'u2' });
    await codes.upsert('a', { accountId: 'u3', grantId: 'g1' }, 60);
    expect(await codes.find('a')).toMatchObject({ accountId: 'u3' });
    expect(await codes.find('missing')).toBeUndefined();
  });

  it('overwrites every column a look-up or a revocation uses, and keeps the first use', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const devices = new Adapter('DeviceCode');
    await devices.upsert('d', { uid: 'uid-1', userCode: 'AAAA-AAAA', accountId: 'acc-1', grantId: 'g1' }, 60);
    await devices.consume('d');
    const firstUse = Math.floor(now.getTime() / 1000);
    later(5);
    await devices.upsert('d', { uid: 'uid-2', userCode: 'BBBB-BBBB', accountId: 'acc-2', grantId: 'g2' }, 0);
    expect(await devices.findByUid('uid-1')).toBeUndefined();
    expect(await devices.findByUserCode('AAAA-AAAA')).toBeUndefined();
    expect(await devices.findByUid('uid-2')).toMatchObject({ accountId: 'acc-2', consumed: firstUse });
    expect(await devices.findByUserCode('BBBB-BBBB')).toMatchObject({ grantId: 'g2' });
    const [row] = await database.db.selectFrom('oidc_payloads').selectAll().where('id', '=', 'd').execute();
    expect(row).toMatchObject({ model: 'DeviceCode', grant_id: 'g2', account_id: 'acc-2', uid: 'uid-2', user_code: 'BBBB-BBBB', expires_at: null });
    later(3600);
    await devices.revokeByGrantId('g1');
    expect(await devices.find('d')).toBeDefined();
    await devices.revokeByGrantId('g2');
    expect(await devices.find('d')).toBeUndefined();
  });

  it('stops serving a payload once it has expired, and never expires one stored without a lifetime', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const sessions = new Adapter('Session');
    await sessions.upsert('short', { uid: 'u-short' }, 30);
    await sessions.upsert('forever', { uid: 'u-forever' }, 0);
    later(29);
    expect(await sessions.find('short')).toBeDefined();
    later(1);
    expect(await sessions.find('short')).toBeUndefined();
    expect(await sessions.findByUid('u-short')).toBeUndefined();
    later(10 * 365 * 24 * 3600);
    expect(await sessions.find('forever')).toBeDefined();
  });

  it('marks a payload consumed', async () => {
    const codes = new (createAdapterFactory(database.db, clock, options))('AuthorizationCode');
    await codes.upsert('c', { grantId: 'g' }, 60);
    expect((await codes.find('c'))?.consumed).toBeUndefined();
    await codes.consume('c');
    expect((await codes.find('c'))?.consumed).toBe(Math.floor(now.getTime() / 1000));
  });

  it.each(['AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'])(
    '%s: lets one of the requests that read it unconsumed redeem it, and revokes its grant once for the others',
    async (model) => {
      const revoked: string[] = [];
      const Adapter = createAdapterFactory(database.db, clock, { ...options, onGrantRevoked: (grantId) => revoked.push(grantId) });
      const codes = new Adapter(model);
      const tokens = new Adapter('AccessToken');
      const refresh = new Adapter('RefreshToken');
      const grants = new Adapter('Grant');
      await codes.upsert('c', { accountId: 'u1', grantId: 'g1' }, 60);
      await tokens.upsert('t', { accountId: 'u1', grantId: 'g1' }, 60);
      await refresh.upsert('r', { accountId: 'u1', grantId: 'g1' }, 60);
      await grants.upsert('g1', { accountId: 'u1' }, 60);
      await tokens.upsert('other', { accountId: 'u1', grantId: 'g2' }, 60);
      // oidc-provider consumes a code only after reading it unconsumed; requests (on several
      // instances, say) that all read it so then all consume it.
      const outcomes = await Promise.allSettled([codes.consume('c'), codes.consume('c'), codes.consume('c')]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected']);
      for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ error: 'invalid_grant', statusCode: 400 });
      for (const [adapter, id] of [[codes, 'c'], [tokens, 't'], [refresh, 'r'], [grants, 'g1']] as const) expect(await adapter.find(id), id).toBeUndefined();
      expect(await tokens.find('other')).toBeDefined();
      expect(revoked).toEqual(['g1']);
    },
  );

  it('without a reuse grace, lets one of two uses of a refresh token through, whatever the clocks', async () => {
    const revoked: string[] = [];
    const settings = { ...options, refreshTokenReuseGrace: 0, onGrantRevoked: (grantId: string) => revoked.push(grantId) };
    const strict = new (createAdapterFactory(database.db, clock, settings))('RefreshToken');
    await strict.upsert('r1', { accountId: 'u1', grantId: 'g1' }, 60);
    await strict.upsert('r2', { accountId: 'u1', grantId: 'g2' }, 60);
    await new (createAdapterFactory(database.db, clock, options))('Grant').upsert('g1', { accountId: 'u1' }, 60);

    const outcomes = await Promise.allSettled([strict.consume('r1'), strict.consume('r1')]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await strict.find('r1')).toBeUndefined();
    expect(revoked).toEqual(['g1']);

    // Used on an instance whose clock is a second ahead: here it is used all the same.
    const ahead = new (createAdapterFactory(database.db, { now: () => new Date(now.getTime() + 1000) }, settings))('RefreshToken');
    await ahead.consume('r2');
    expect((await strict.find('r2'))?.consumed).toBeDefined();
    await expect(strict.consume('r2')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('within the reuse grace, lets uses of a refresh token that meet through, and refuses one after it', async () => {
    const revoked: string[] = [];
    const lenient = new (createAdapterFactory(database.db, clock, { ...options, refreshTokenReuseGrace: 5, onGrantRevoked: (grantId) => revoked.push(grantId) }))('RefreshToken');
    await new (createAdapterFactory(database.db, clock, options))('Grant').upsert('g1', { accountId: 'u1' }, 60);
    await lenient.upsert('r', { accountId: 'u1', grantId: 'g1' }, 600);

    const outcomes = await Promise.allSettled([lenient.consume('r'), lenient.consume('r')]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled']);
    later(4);
    expect((await lenient.find('r'))?.consumed).toBeUndefined();
    // Read within the grace, written just after its second turned.
    later(1);
    await lenient.consume('r');
    expect((await lenient.find('r'))?.consumed).toBeDefined();
    later(1);
    await expect(lenient.consume('r')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(revoked).toEqual(['g1']);
  });

  it('finds by uid and by user code, and destroys', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const sessions = new Adapter('Session');
    const devices = new Adapter('DeviceCode');
    await sessions.upsert('s1', { uid: 'uid-1', accountId: 'x' }, 60);
    await devices.upsert('d1', { userCode: 'ABCD-EFGH', grantId: 'g' }, 60);
    expect(await sessions.findByUid('uid-1')).toMatchObject({ accountId: 'x' });
    expect(await devices.findByUserCode('ABCD-EFGH')).toMatchObject({ userCode: 'ABCD-EFGH' });
    await sessions.destroy('s1');
    expect(await sessions.findByUid('uid-1')).toBeUndefined();
  });

  it('revokes every token of a grant, in that model only', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const refresh = new Adapter('RefreshToken');
    const access = new Adapter('AccessToken');
    await refresh.upsert('r1', { grantId: 'g1' }, 60);
    await refresh.upsert('r2', { grantId: 'g1' }, 60);
    await refresh.upsert('r3', { grantId: 'g2' }, 60);
    await access.upsert('a1', { grantId: 'g1' }, 60);
    await refresh.revokeByGrantId('g1');
    expect(await refresh.find('r1')).toBeUndefined();
    expect(await refresh.find('r2')).toBeUndefined();
    expect(await refresh.find('r3')).toBeDefined();
    expect(await access.find('a1')).toBeDefined();
  });

  it('purges expired rows in batches and keeps the live ones', async () => {
    const Adapter = createAdapterFactory(database.db, clock, options);
    const tokens = new Adapter('AccessToken');
    for (let i = 0; i < 250; i++) await tokens.upsert(`old-${i}`, { grantId: 'g' }, 10);
    await tokens.upsert('live', { grantId: 'g' }, 3600);
    await tokens.upsert('forever', { grantId: 'g' }, 0);
    later(11);
    expect(await purgeExpiredPayloads(database.db, clock, 100)).toBe(250);
    const left = await database.db.selectFrom('oidc_payloads').select('id').orderBy('id').execute();
    expect(left.map((r) => r.id)).toEqual(['forever', 'live']);
  });

  it('serves clients from the clients table and refuses to write them', async () => {
    const clients = new (createAdapterFactory(database.db, clock, options))('Client');
    expect(await clients.find('nope')).toBeUndefined();
    await expect(clients.upsert('x', {}, 0)).rejects.toThrow(/admin script/);
  });
});
