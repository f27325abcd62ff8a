import { sql, type Kysely } from 'kysely';

export const ADMIN_ROLE_ID = '00000000-0000-4000-8000-000000000001';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A permission is a scope of an API; removing the scope from the API removes it from roles.
  await db.schema
    .createTable('role_permissions')
    .addColumn('role_id', 'text', (c) => c.notNull().references('roles.id').onDelete('cascade'))
    .addColumn('api_id', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('role_permissions_pk', ['role_id', 'api_id', 'scope'])
    .addForeignKeyConstraint('role_permissions_scope_fk', ['api_id', 'scope'], 'api_scopes', ['api_id', 'name'], (fk) => fk.onDelete('cascade'))
    .execute();
  await db.schema.createIndex('role_permissions_api').on('role_permissions').columns(['api_id', 'scope']).execute();

  await db.schema
    .createTable('client_roles')
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('role_id', 'text', (c) => c.notNull().references('roles.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('client_roles_pk', ['client_id', 'role_id'])
    .execute();
  await db.schema.createIndex('client_roles_role_id').on('client_roles').column('role_id').execute();

  // The built-in role that Latchkey's own administration will require.
  await sql`insert into roles (id, name, description, created_at)
    select ${ADMIN_ROLE_ID}, 'latchkey:admin', 'Administers Latchkey itself', ${new Date().toISOString()}
    where not exists (select 1 from roles where name = 'latchkey:admin')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from roles where id = ${ADMIN_ROLE_ID}`.execute(db);
  await db.schema.dropTable('client_roles').execute();
  await db.schema.dropTable('role_permissions').execute();
}
