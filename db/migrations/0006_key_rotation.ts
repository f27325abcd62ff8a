import type { Kysely } from 'kysely';

// Signing keys get a life cycle: published ahead of use (pending), signing (active), still
// published for tokens they signed (retiring), then gone (retired). Keys that exist already
// are active from the start of time.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('keys').addColumn('activates_at', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('keys').addColumn('retires_at', 'bigint').execute();
  // Clients that ask for ID tokens signed with ES256 or EdDSA instead of RS256.
  await db.schema.alterTable('clients').addColumn('id_token_signed_response_alg', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('id_token_signed_response_alg').execute();
  await db.schema.alterTable('keys').dropColumn('retires_at').execute();
  await db.schema.alterTable('keys').dropColumn('activates_at').execute();
}
