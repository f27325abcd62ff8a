import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import type { SecretBox } from './secret-box.ts';

export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export type KeyState = 'pending' | 'active' | 'retiring' | 'retired';

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  state: KeyState;
  createdAt: string;
  activatesAt: number;
  retiresAt: number | null;
}

export interface ProviderKeys {
  /** Private JWKs for oidc-provider's `jwks`: the active key of each algorithm first (it signs), then the others it must publish. */
  signing: crypto.JsonWebKey[];
  /** Algorithms that have an active key, and so may sign. */
  signingAlgs: SigningAlg[];
  /** Secrets for signing cookies, newest first. */
  cookie: string[];
  /** Changes whenever what is published or what signs changes. */
  fingerprint: string;
}

interface SigningRow {
  kid: string;
  alg: string;
  created_at: string;
  activates_at: number;
  retires_at: number | null;
}

// RFC 7638 thumbprint of the public key: a stable, content-derived kid.
function thumbprint(jwk: crypto.JsonWebKey): string {
  const members =
    jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function generatePrivateKey(alg: SigningAlg): crypto.KeyObject {
  if (alg === 'RS256') return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  if (alg === 'ES256') return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return crypto.generateKeyPairSync('ed25519').privateKey;
}

function generateSigningKey(box: SecretBox, alg: SigningAlg): { kid: string; alg: string; material: string } {
  const jwk = generatePrivateKey(alg).export({ format: 'jwk' });
  const kid = thumbprint(jwk);
  return { kid, alg, material: box.seal(JSON.stringify({ ...jwk, kid, alg, use: 'sig' }), `key:${kid}`) };
}

/** Where each signing key is in its life at `now`. */
function stateOf(row: SigningRow, activeKids: Set<string>, now: number): KeyState {
  if (row.retires_at !== null && row.retires_at <= now) return 'retired';
  if (row.activates_at > now) return 'pending';
  return activeKids.has(row.kid) ? 'active' : 'retiring';
}

/** The newest key of each algorithm that has reached its activation time and is not retired. */
function activeKidsOf(rows: SigningRow[], now: number): Set<string> {
  const active = new Map<string, SigningRow>();
  for (const row of rows) {
    if (row.activates_at > now || (row.retires_at !== null && row.retires_at <= now)) continue;
    const current = active.get(row.alg);
    if (!current || row.activates_at > current.activates_at || (row.activates_at === current.activates_at && row.created_at > current.created_at)) {
      active.set(row.alg, row);
    }
  }
  return new Set([...active.values()].map((r) => r.kid));
}

async function signingRows(db: Kysely<Database>): Promise<(SigningRow & { material: string })[]> {
  return db
    .selectFrom('keys')
    .select(['kid', 'alg', 'created_at', 'activates_at', 'retires_at', 'material'])
    .where('use', '=', 'sig')
    .orderBy('activates_at', 'desc')
    .orderBy('created_at', 'desc')
    .execute()
    .then((rows) => rows.map((r) => ({ ...r, alg: r.alg ?? 'RS256', activates_at: Number(r.activates_at), retires_at: r.retires_at === null ? null : Number(r.retires_at) })));
}

/** Every signing key with its state, newest first, for `admin keys list`. */
export async function listSigningKeys(db: Kysely<Database>, now: number): Promise<SigningKeyInfo[]> {
  const rows = await signingRows(db);
  const active = activeKidsOf(rows, now);
  return rows.map((r) => ({ kid: r.kid, alg: r.alg, state: stateOf(r, active, now), createdAt: r.created_at, activatesAt: r.activates_at, retiresAt: r.retires_at }));
}

/** The keys as the provider needs them at `now`. */
export async function loadProviderKeys(db: Kysely<Database>, box: SecretBox, now: number): Promise<ProviderKeys> {
  const rows = await signingRows(db);
  const active = activeKidsOf(rows, now);
  const published = rows
    .map((r) => ({ row: r, state: stateOf(r, active, now) }))
    .filter((k) => k.state !== 'retired')
    // oidc-provider signs with the first key that fits the algorithm: the active one goes first.
    .sort((a, b) => Number(b.state === 'active') - Number(a.state === 'active'));
  const cookieRows = await db.selectFrom('keys').select(['kid', 'material']).where('use', '=', 'cookie').orderBy('created_at', 'desc').orderBy('kid').execute();
  const signingAlgs = SIGNING_ALGS.filter((alg) => rows.some((r) => r.alg === alg && active.has(r.kid)));
  return {
    signing: published.map((k) => JSON.parse(box.open(k.row.material, `key:${k.row.kid}`)) as crypto.JsonWebKey),
    signingAlgs,
    cookie: cookieRows.map((r) => box.open(r.material, `key:${r.kid}`)),
    fingerprint: published.map((k) => `${k.row.kid}:${k.state === 'active' ? 'a' : 'p'}`).join(','),
  };
}

/**
 * Loads the signing and cookie keys, creating them on first start. They live in the database,
 * sealed under the key-encryption key, so that a restart, or another instance on the same
 * database, uses the same keys.
 */
export async function ensureProviderKeys(db: Kysely<Database>, box: SecretBox, now: number): Promise<ProviderKeys> {
  const existing = await loadProviderKeys(db, box, now);
  if (existing.signingAlgs.includes('RS256') && existing.cookie.length > 0) return existing;
  const created = new Date().toISOString();
  await db.transaction().execute(async (trx) => {
    // Instances starting together on one PostgreSQL database must not each create keys:
    // the first takes the lock and creates them, the others find them once it commits.
    // (SQLite serves one instance; its writers are serialised anyway.)
    if (isPostgres(db)) await sql`select pg_advisory_xact_lock(hashtext('latchkey:keys'))`.execute(trx);
    const present = await trx.selectFrom('keys').select(['use', 'alg']).execute();
    if (!present.some((k) => k.use === 'sig' && (k.alg ?? 'RS256') === 'RS256')) {
      await trx.insertInto('keys').values({ ...generateSigningKey(box, 'RS256'), use: 'sig', created_at: created, activates_at: 0, retires_at: null }).execute();
    }
    if (!present.some((k) => k.use === 'cookie')) {
      const secret = crypto.randomBytes(32).toString('base64url');
      const kid = crypto.createHash('sha256').update(secret).digest('base64url').slice(0, 16);
      await trx
        .insertInto('keys')
        .values({ kid, use: 'cookie', alg: null, material: box.seal(secret, `key:${kid}`), created_at: created, activates_at: 0, retires_at: null })
        .execute();
    }
  });
  return loadProviderKeys(db, box, now);
}

export interface Rotation {
  alg: SigningAlg;
  /** Seconds the new key is published before it signs, so every instance and app has fetched it. */
  leadSeconds: number;
  /** Seconds the replaced key stays published after the new one takes over: the longest a token it signed can live. */
  retireAfterSeconds: number;
  now: number;
}

/**
 * Adds a signing key that is published now and signs from `now + leadSeconds`; the key it
 * replaces stays published until every token it signed has expired.
 */
export async function rotateSigningKey(db: Kysely<Database>, box: SecretBox, rotation: Rotation): Promise<{ added: SigningKeyInfo; retiring: SigningKeyInfo | null }> {
  if (!(SIGNING_ALGS as readonly string[]).includes(rotation.alg)) {
    throw new DomainError('invalid_input', `--alg must be one of ${SIGNING_ALGS.join(', ')}`);
  }
  const { now } = rotation;
  const activatesAt = now + rotation.leadSeconds;
  const current = (await listSigningKeys(db, now)).find((k) => k.alg === rotation.alg && k.state === 'active') ?? null;
  const key = generateSigningKey(box, rotation.alg);
  const retiresAt = current ? activatesAt + rotation.retireAfterSeconds : null;
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('keys').values({ ...key, use: 'sig', created_at: new Date(now * 1000).toISOString(), activates_at: activatesAt, retires_at: null }).execute();
    if (current) await trx.updateTable('keys').set({ retires_at: retiresAt }).where('kid', '=', current.kid).execute();
  });
  return {
    added: { kid: key.kid, alg: rotation.alg, state: rotation.leadSeconds > 0 ? 'pending' : 'active', createdAt: new Date(now * 1000).toISOString(), activatesAt, retiresAt: null },
    retiring: current ? { ...current, retiresAt } : null,
  };
}
