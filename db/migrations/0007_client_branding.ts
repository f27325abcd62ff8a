import type { Kysely } from 'kysely';

// What the login and consent pages show of an app besides its name (OpenID Connect
// Dynamic Client Registration metadata names).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('logo_uri', 'text').execute();
  await db.schema.alterTable('clients').addColumn('policy_uri', 'text').execute();
  await db.schema.alterTable('clients').addColumn('tos_uri', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('tos_uri').execute();
  await db.schema.alterTable('clients').dropColumn('policy_uri').execute();
  await db.schema.alterTable('clients').dropColumn('logo_uri').execute();
}
