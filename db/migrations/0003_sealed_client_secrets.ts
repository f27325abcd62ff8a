import type { Kysely } from 'kysely';

// Clients using client_secret_jwt need their plain secret to check HMAC signatures; it is kept
// sealed under the key-encryption key, never in plain text.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('secret_sealed', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('secret_sealed').execute();
}
