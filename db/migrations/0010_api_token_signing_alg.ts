import type { Kysely } from 'kysely';

// Which key signs an API's access tokens: null is RS256, which every JWT library verifies;
// ES256 and EdDSA are smaller and several times cheaper to sign.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('apis').addColumn('access_token_signing_alg', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('apis').dropColumn('access_token_signing_alg').execute();
}
