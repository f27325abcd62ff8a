import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import type { SecretBox } from './secret-box.ts';

export interface ProviderKeys {
  /** Private JWKs for oidc-provider's `jwks`, newest first: the first one signs. */
  signing: crypto.JsonWebKey[];
  /** Secrets for signing cookies, newest first. */
  cookie: string[];
}

// RFC 7638 thumbprint of the public RSA key: a stable, content-derived kid.
function rsaThumbprint(jwk: crypto.JsonWebKey): string {
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

function generateSigningKey(box: SecretBox): { kid: string; alg: string; material: string } {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = rsaThumbprint(jwk);
  return { kid, alg: 'RS256', material: box.seal(JSON.stringify({ ...jwk, kid, alg: 'RS256', use: 'sig' }), `key:${kid}`) };
}

async function loadKeys(db: Kysely<Database>, box: SecretBox): Promise<ProviderKeys> {
  const rows = await db.selectFrom('keys').selectAll().orderBy('created_at', 'desc').orderBy('kid').execute();
  const open = (row: (typeof rows)[number]) => box.open(row.material, `key:${row.kid}`);
  return {
    signing: rows.filter((r) => r.use === 'sig').map((r) => JSON.parse(open(r)) as crypto.JsonWebKey),
    cookie: rows.filter((r) => r.use === 'cookie').map(open),
  };
}

/**
 * Loads the signing and cookie keys, creating them on first start. They live in the database,
 * sealed under the key-encryption key, so that a restart, or another instance on the same
 * database, uses the same keys.
 */
export async function ensureProviderKeys(db: Kysely<Database>, box: SecretBox): Promise<ProviderKeys> {
  const existing = await loadKeys(db, box);
  if (existing.signing.length > 0 && existing.cookie.length > 0) return existing;
  const now = new Date().toISOString();
  await db.transaction().execute(async (trx) => {
    // Instances starting together on one PostgreSQL database must not each create keys:
    // the first takes the lock and creates them, the others find them once it commits.
    // (SQLite serves one instance; its writers are serialised anyway.)
    if (isPostgres(db)) await sql`select pg_advisory_xact_lock(hashtext('latchkey:keys'))`.execute(trx);
    const present = await trx.selectFrom('keys').select('use').execute();
    if (!present.some((k) => k.use === 'sig')) {
      await trx.insertInto('keys').values({ ...generateSigningKey(box), use: 'sig', created_at: now }).execute();
    }
    if (!present.some((k) => k.use === 'cookie')) {
      const secret = crypto.randomBytes(32).toString('base64url');
      const kid = crypto.createHash('sha256').update(secret).digest('base64url').slice(0, 16);
      await trx.insertInto('keys').values({ kid, use: 'cookie', alg: null, material: box.seal(secret, `key:${kid}`), created_at: now }).execute();
    }
  });
  return loadKeys(db, box);
}
