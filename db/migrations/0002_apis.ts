import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('apis')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('identifier', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('access_token_ttl', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_scopes')
    .addColumn('api_id', 'text', (c) => c.notNull().references('apis.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('api_scopes_pk', ['api_id', 'name'])
    .execute();

  await db.schema.alterTable('clients').addColumn('backchannel_logout_uri', 'text').execute();
  await db.schema.alterTable('clients').addColumn('jwks', 'text').execute();
  await db.schema.alterTable('clients').addColumn('jwks_uri', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('jwks_uri').execute();
  await db.schema.alterTable('clients').dropColumn('jwks').execute();
  await db.schema.alterTable('clients').dropColumn('backchannel_logout_uri').execute();
  await db.schema.dropTable('api_scopes').execute();
  await db.schema.dropTable('apis').execute();
}
