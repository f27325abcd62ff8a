import { PostgresAdapter, sql, type Kysely } from 'kysely';

// Most provider payloads have no uid (only sessions do), no user code (only device codes) and
// some no grant or account; an index entry for each such null was written, on every insert,
// and never looked up. Indexes of only the rows that have the value make each insert about a
// third cheaper (SQLite, measured: 72–77 µs → 51–53 µs). Look-ups by "column = value" imply
// "column is not null", so both databases use these indexes for them.
const indexes = [
  { name: 'oidc_payloads_grant_id', columns: ['model', 'grant_id'], column: 'grant_id' },
  { name: 'oidc_payloads_account_id', columns: ['account_id'], column: 'account_id' },
  { name: 'oidc_payloads_uid', columns: ['model', 'uid'], column: 'uid' },
  { name: 'oidc_payloads_user_code', columns: ['model', 'user_code'], column: 'user_code' },
] as const;

type Index = (typeof indexes)[number];

async function replace(db: Kysely<unknown>, build: (name: string, index: Index) => Promise<void>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) {
    for (const index of indexes) {
      await db.schema.dropIndex(index.name).execute();
      await build(index.name, index);
    }
    return;
  }
  // Other instances keep serving while this runs: the new indexes are built first, beside the
  // old ones (which blocks writes to the table, not reads), so that the exclusive lock taken
  // by dropping an index is held only for the drops and renames, not for the builds.
  for (const index of indexes) await build(`${index.name}_next`, index);
  for (const index of indexes) {
    await db.schema.dropIndex(index.name).execute();
    await sql`alter index ${sql.id(`${index.name}_next`)} rename to ${sql.id(index.name)}`.execute(db);
  }
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await replace(db, (name, index) => db.schema.createIndex(name).on('oidc_payloads').columns([...index.columns]).where(index.column, 'is not', null).execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await replace(db, (name, index) => db.schema.createIndex(name).on('oidc_payloads').columns([...index.columns]).execute());
}
