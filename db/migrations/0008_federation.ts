import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Upstream OpenID Connect providers people may sign in with.
  await db.schema
    .createTable('identity_providers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('client_secret_sealed', 'text')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('button_label', 'text')
    .addColumn('allow_signup', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('link_by_verified_email', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refresh_profile', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('role_claim', 'text')
    .addColumn('role_map', 'text')
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // Which upstream account is which Latchkey user: by provider and upstream subject, not email.
  await db.schema
    .createTable('user_links')
    .addColumn('provider_id', 'text', (c) => c.notNull().references('identity_providers.id').onDelete('cascade'))
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_links_pk', ['provider_id', 'subject'])
    .execute();
  await db.schema.createIndex('user_links_user').on('user_links').column('user_id').execute();

  // A sign-in in progress at an upstream provider: what the callback must check.
  await db.schema
    .createTable('federation_flows')
    .addColumn('state', 'text', (c) => c.primaryKey())
    .addColumn('interaction_uid', 'text', (c) => c.notNull())
    .addColumn('provider_id', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('pending_subject', 'text')
    .addColumn('pending_email', 'text')
    .addColumn('resolved_user_id', 'text')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('federation_flows_interaction').on('federation_flows').column('interaction_uid').execute();

  await db.schema.alterTable('users').addColumn('picture', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('picture').execute();
  await db.schema.dropTable('federation_flows').execute();
  await db.schema.dropTable('user_links').execute();
  await db.schema.dropTable('identity_providers').execute();
}
