import { sql, type Compilable } from 'kysely';
import { Migrator } from 'kysely/migration';
import { migrations } from '../db/migrations/index.ts';
import { describe, expect, it } from 'vitest';
import { freshDatabasePerTest, testDialect } from './helpers/database.ts';

describe('the provider payload indexes', () => {
  const fresh = freshDatabasePerTest();

  /** The plan the database chooses for a query, as text. */
  async function planOf(query: Compilable<unknown>): Promise<string> {
    const { sql: text, parameters } = query.compile();
    const db = fresh.database.db;
    if (testDialect === 'sqlite') {
      // Parameters are inlined as literals for EXPLAIN; none of these contain a quote.
      const inlined = parameters.reduce<string>((q, p) => q.replace('?', `'${String(p)}'`), text);
      return (await sql.raw<{ detail: string }>(`explain query plan ${inlined}`).execute(db)).rows.map((r) => r.detail).join('\n');
    }
    const inlined = parameters.reduce<string>((q, p, i) => q.replace(`$${i + 1}`, `'${String(p)}'`), text);
    return db.transaction().execute(async (trx) => {
      // An empty table is cheapest to scan; the question is whether the index can serve at all.
      await sql`set local enable_seqscan = off`.execute(trx);
      return (await sql.raw<{ 'QUERY PLAN': string }>(`explain ${inlined}`).execute(trx)).rows.map((r) => r['QUERY PLAN']).join('\n');
    });
  }

  async function definitionOf(name: string): Promise<string> {
    const db = fresh.database.db;
    if (testDialect === 'sqlite') return (await sql<{ sql: string }>`select sql from sqlite_master where name = ${name}`.execute(db)).rows[0]!.sql;
    return (await sql<{ indexdef: string }>`select indexdef from pg_indexes where indexname = ${name}`.execute(db)).rows[0]!.indexdef;
  }

  // Each index with the look-ups the adapter makes by it.
  const db = () => fresh.database.db;
  it.each([
    ['oidc_payloads_uid', 'uid', () => db().selectFrom('oidc_payloads').select('payload').where('model', '=', 'Session').where('uid', '=', 'x')],
    ['oidc_payloads_user_code', 'user_code', () => db().selectFrom('oidc_payloads').select('payload').where('model', '=', 'DeviceCode').where('user_code', '=', 'x')],
    ['oidc_payloads_grant_id', 'grant_id', () => db().deleteFrom('oidc_payloads').where('model', '=', 'AccessToken').where('grant_id', '=', 'x')],
    ['oidc_payloads_account_id', 'account_id', () => db().deleteFrom('oidc_payloads').where('account_id', '=', 'x')],
  ] as const)('%s holds only rows that have a %s, and serves the look-ups by it', async (name, column, query) => {
    expect((await definitionOf(name)).toLowerCase()).toMatch(new RegExp(`where \\(?"?${column}"? is not null\\)?`));
    const plan = await planOf(query());
    expect(plan).toContain(name);
    expect(plan).not.toMatch(/\bSCAN oidc_payloads\b(?! USING)/);
  });

  it('can be taken back to full indexes and forward again', async () => {
    const migrator = new Migrator({ db: fresh.database.db, provider: { getMigrations: async () => migrations } });
    expect((await migrator.migrateTo('0010_api_token_signing_alg')).error).toBeUndefined();
    expect((await definitionOf('oidc_payloads_uid')).toLowerCase()).not.toContain('where');
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    expect((await definitionOf('oidc_payloads_uid')).toLowerCase()).toContain('is not null');
  });
});
