import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { ApiTable, Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { supportedScopes } from '../oidc/scopes.ts';
import { canMatchStored } from '../db/text.ts';
import { listSigningKeys, SIGNING_ALGS, type SigningAlg } from '../keys/keys.ts';

export type ApiRow = Selectable<ApiTable>;

export interface ApiScope {
  name: string;
  description: string | null;
}

export interface Api {
  id: string;
  identifier: string;
  name: string;
  accessTokenTtl: number | null;
  /** The algorithm of the key that signs its access tokens. */
  tokenSigningAlg: SigningAlg;
  scopes: ApiScope[];
  createdAt: string;
}

// Scope tokens are printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3); a
// colon-namespaced word such as invoices:read is the convention.
const SCOPE_NAME = /^[A-Za-z0-9][A-Za-z0-9:._\-/]{0,99}$/;
export const MAX_ACCESS_TOKEN_TTL = 24 * 60 * 60;

function checkIdentifier(identifier: string): string {
  let url: URL;
  try {
    url = new URL(identifier);
  } catch {
    throw new DomainError('invalid_input', `--identifier must be an absolute URL, got ${JSON.stringify(identifier)}`);
  }
  // RFC 8707 §2: an absolute URI without a fragment.
  if (identifier.includes('#')) throw new DomainError('invalid_input', '--identifier must not contain a fragment');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DomainError('invalid_input', `--identifier must use https or http, got ${JSON.stringify(identifier)}`);
  }
  return identifier;
}

export function checkScopeName(name: string): string {
  if (!SCOPE_NAME.test(name)) {
    throw new DomainError('invalid_input', `scope ${JSON.stringify(name)} must be 1-100 letters, digits or : . _ - / and start with a letter or digit`);
  }
  if ((supportedScopes as readonly string[]).includes(name)) {
    throw new DomainError('invalid_input', `scope ${name} is reserved for OpenID Connect`);
  }
  return name;
}

export function checkAccessTokenTtl(ttl: number | undefined): number | null {
  if (ttl === undefined) return null;
  if (!Number.isInteger(ttl) || ttl < 30 || ttl > MAX_ACCESS_TOKEN_TTL) {
    throw new DomainError('invalid_input', `--access-token-ttl must be a whole number of seconds from 30 to ${MAX_ACCESS_TOKEN_TTL}`);
  }
  return ttl;
}

async function scopesOf(db: Kysely<Database>, apiId: string): Promise<ApiScope[]> {
  const scopes = await db.selectFrom('api_scopes').select(['name', 'description']).where('api_id', '=', apiId).execute();
  // Sorted here, not by ORDER BY: with it, SQLite's planner weighs the api_id bound to the
  // statement and prepares it anew at every run (consent pages list an API's scopes).
  return scopes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function checkTokenSigningAlg(alg: string | undefined): SigningAlg | null {
  if (alg === undefined) return null;
  if (!(SIGNING_ALGS as readonly string[]).includes(alg)) {
    throw new DomainError('invalid_input', `--token-signing-alg must be one of ${SIGNING_ALGS.join(', ')}, got ${JSON.stringify(alg)}`);
  }
  return alg as SigningAlg;
}

function toApi(row: ApiRow, scopes: ApiScope[]): Api {
  return {
    id: row.id,
    identifier: row.identifier,
    name: row.name,
    accessTokenTtl: row.access_token_ttl,
    tokenSigningAlg: (row.access_token_signing_alg ?? 'RS256') as SigningAlg,
    scopes,
    createdAt: row.created_at,
  };
}

export async function findApiByIdentifier(db: Kysely<Database>, identifier: string): Promise<Api | undefined> {
  if (!canMatchStored(identifier)) return undefined;
  const row = await db.selectFrom('apis').selectAll().where('identifier', '=', identifier).executeTakeFirst();
  return row ? toApi(row, await scopesOf(db, row.id)) : undefined;
}

export async function requireApi(db: Kysely<Database>, identifier: string): Promise<Api> {
  const api = await findApiByIdentifier(db, identifier);
  if (!api) throw new DomainError('not_found', `no API with identifier ${identifier}`);
  return api;
}

export async function listApis(db: Kysely<Database>): Promise<Api[]> {
  const rows = await db.selectFrom('apis').selectAll().orderBy('identifier').execute();
  return Promise.all(rows.map(async (row) => toApi(row, await scopesOf(db, row.id))));
}

export interface NewApi {
  identifier: string;
  name: string;
  scopes?: string[];
  accessTokenTtl?: number;
  /** RS256 (the default), ES256 or EdDSA. */
  tokenSigningAlg?: string;
}

export async function createApi(db: Kysely<Database>, input: NewApi): Promise<Api> {
  const identifier = checkIdentifier(input.identifier ?? '');
  const name = input.name?.trim();
  if (!name) throw new DomainError('invalid_input', '--name is required');
  if (name.length > 200) throw new DomainError('invalid_input', 'name must be at most 200 characters');
  const scopes = [...new Set((input.scopes ?? []).map(checkScopeName))];
  const ttl = checkAccessTokenTtl(input.accessTokenTtl);
  const alg = checkTokenSigningAlg(input.tokenSigningAlg);
  if (await findApiByIdentifier(db, identifier)) throw new DomainError('conflict', `an API with identifier ${identifier} already exists`);
  const now = new Date().toISOString();
  if (alg && alg !== 'RS256') {
    const keys = await listSigningKeys(db, Math.floor(Date.parse(now) / 1000));
    if (!keys.some((k) => k.alg === alg && (k.state === 'active' || k.state === 'pending'))) {
      throw new DomainError('invalid_input', `there is no ${alg} signing key: add one with keys rotate --alg ${alg} first`);
    }
  }
  const row: ApiRow = { id: crypto.randomUUID(), identifier, name, access_token_ttl: ttl, access_token_signing_alg: alg, created_at: now };
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('apis').values(row).execute();
    if (scopes.length) {
      await trx.insertInto('api_scopes').values(scopes.map((s) => ({ api_id: row.id, name: s, description: null, created_at: now }))).execute();
    }
  });
  return toApi(row, scopes.map((s) => ({ name: s, description: null })));
}

export async function deleteApi(db: Kysely<Database>, identifier: string): Promise<void> {
  const api = await requireApi(db, identifier);
  await db.deleteFrom('apis').where('id', '=', api.id).execute();
}

export async function addApiScope(db: Kysely<Database>, identifier: string, scope: string, description?: string): Promise<Api> {
  const api = await requireApi(db, identifier);
  checkScopeName(scope);
  if (description !== undefined && description.length > 500) throw new DomainError('invalid_input', 'description must be at most 500 characters');
  if (api.scopes.some((s) => s.name === scope)) throw new DomainError('conflict', `API ${identifier} already has scope ${scope}`);
  await db
    .insertInto('api_scopes')
    .values({ api_id: api.id, name: scope, description: description?.trim() || null, created_at: new Date().toISOString() })
    .execute();
  return requireApi(db, identifier);
}

export async function removeApiScope(db: Kysely<Database>, identifier: string, scope: string): Promise<Api> {
  const api = await requireApi(db, identifier);
  if (!api.scopes.some((s) => s.name === scope)) throw new DomainError('not_found', `API ${identifier} has no scope ${scope}`);
  await db.deleteFrom('api_scopes').where('api_id', '=', api.id).where('name', '=', scope).execute();
  return requireApi(db, identifier);
}

/** Every scope name of every API, for checking what a service client may be given. */
/**
 * Scope names that more than one API defines. A name alone cannot say which API it means, so a
 * scope registered on a service by name counts only while one API defines it: otherwise a
 * service meant for one API's `read` would get every other API's `read` as well.
 */
export async function sharedApiScopeNames(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db.selectFrom('api_scopes').select('name').groupBy('name').having((eb) => eb.fn.countAll(), '>', 1).execute();
  return new Set(rows.map((r) => r.name));
}

export async function allApiScopeNames(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db.selectFrom('api_scopes').select('name').execute();
  return new Set(rows.map((r) => r.name));
}
