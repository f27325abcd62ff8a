import { PostgresAdapter, sql, type Kysely } from 'kysely';

// The tables whose rows say who may get which token: clients, APIs, roles and what they grant.
const REGISTRY_TABLES = ['clients', 'client_roles', 'apis', 'api_scopes', 'roles', 'role_permissions', 'user_roles'] as const;

// A counter that changes in the same transaction as any change to those tables, whoever makes
// it (an instance, the admin script, plain SQL): triggers, so no writer can forget it. Servers
// keep what they read of the registry in memory for as long as the counter stays the same.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('registry_version')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into registry_version (id, version) values (1, 1)`.execute(db);

  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`
      create function registry_changed() returns trigger language plpgsql as $$
      begin
        update registry_version set version = version + 1 where id = 1;
        return null;
      end
      $$`.execute(db);
    for (const table of REGISTRY_TABLES) {
      await sql`create trigger ${sql.id(`${table}_registry_changed`)} after insert or update or delete or truncate on ${sql.table(table)}
        for each statement execute function registry_changed()`.execute(db);
    }
    return;
  }
  for (const table of REGISTRY_TABLES) {
    for (const event of ['insert', 'update', 'delete']) {
      await sql`create trigger ${sql.id(`${table}_registry_changed_on_${event}`)} after ${sql.raw(event)} on ${sql.table(table)}
        begin update registry_version set version = version + 1 where id = 1; end`.execute(db);
    }
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    for (const table of REGISTRY_TABLES) await sql`drop trigger ${sql.id(`${table}_registry_changed`)} on ${sql.table(table)}`.execute(db);
    await sql`drop function registry_changed()`.execute(db);
  } else {
    for (const table of REGISTRY_TABLES) {
      for (const event of ['insert', 'update', 'delete']) await sql`drop trigger ${sql.id(`${table}_registry_changed_on_${event}`)}`.execute(db);
    }
  }
  await db.schema.dropTable('registry_version').execute();
}
