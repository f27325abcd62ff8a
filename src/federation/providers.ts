import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, IdentityProviderTable } from '../db/schema.ts';
import { canMatchStored } from '../db/text.ts';
import { reusableQuery } from '../db/reusable-query.ts';
import { DomainError } from '../errors.ts';
import type { SecretBox } from '../keys/secret-box.ts';

export type ProviderRow = Selectable<IdentityProviderTable>;

export interface IdentityProvider {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scope: string;
  buttonLabel: string;
  allowSignup: boolean;
  linkByVerifiedEmail: boolean;
  refreshProfile: boolean;
  roleClaim: string | null;
  roleMap: Record<string, string>;
  disabled: boolean;
  createdAt: string;
}

const ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function toIdentityProvider(row: ProviderRow): IdentityProvider {
  return {
    id: row.id,
    name: row.name,
    issuer: row.issuer,
    clientId: row.client_id,
    scope: row.scope,
    buttonLabel: row.button_label ?? `Continue with ${row.name}`,
    allowSignup: row.allow_signup === 1,
    linkByVerifiedEmail: row.link_by_verified_email === 1,
    refreshProfile: row.refresh_profile === 1,
    roleClaim: row.role_claim,
    roleMap: row.role_map ? (JSON.parse(row.role_map) as Record<string, string>) : {},
    disabled: row.disabled === 1,
    createdAt: row.created_at,
  };
}

/**
 * Upstream issuers must be https. Plain http is accepted only on loopback, for development
 * and tests (the same exception OAuth makes for loopback redirect URIs).
 */
export function checkIssuer(issuer: string): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new DomainError('invalid_input', `--issuer must be an absolute URL, got ${JSON.stringify(issuer)}`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new DomainError('invalid_input', '--issuer must use https');
  }
  if (url.search || url.hash) throw new DomainError('invalid_input', '--issuer must not have a query or fragment');
  return url.href.replace(/\/$/, '');
}

/** `engineering=developer` pairs: an upstream claim value, and the Latchkey role it gives. */
export function parseRoleMap(pairs: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new DomainError('invalid_input', `--role-map takes VALUE=ROLE, got ${JSON.stringify(pair)}`);
    map[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return map;
}

export interface NewIdentityProvider {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scope?: string;
  buttonLabel?: string;
  allowSignup?: boolean;
  linkByVerifiedEmail?: boolean;
  refreshProfile?: boolean;
  roleClaim?: string;
  roleMap?: Record<string, string>;
}

export async function createIdentityProvider(db: Kysely<Database>, box: SecretBox, input: NewIdentityProvider): Promise<IdentityProvider> {
  if (!ID.test(input.id ?? '')) throw new DomainError('invalid_input', '--id must be 1-40 lower-case letters, digits or - (it appears in URLs)');
  const name = input.name?.trim();
  if (!name || name.length > 100) throw new DomainError('invalid_input', '--name must be 1 to 100 characters');
  const issuer = checkIssuer(input.issuer ?? '');
  if (!input.clientId) throw new DomainError('invalid_input', '--client-id is required');
  const scope = (input.scope ?? 'openid email profile').split(/\s+/).filter(Boolean);
  if (!scope.includes('openid')) throw new DomainError('invalid_input', '--scope must include openid');
  const roleMap = input.roleMap ?? {};
  if (Object.keys(roleMap).length && !input.roleClaim) throw new DomainError('invalid_input', '--role-map needs --map-claim');
  const roles = Object.values(roleMap);
  if (roles.length) {
    const known = await db.selectFrom('roles').select('name').where('name', 'in', roles).execute();
    const missing = roles.filter((r) => !known.some((k) => k.name === r));
    if (missing.length) throw new DomainError('not_found', `no role named ${[...new Set(missing)].join(', ')}`);
  }
  if (await db.selectFrom('identity_providers').select('id').where('id', '=', input.id).executeTakeFirst()) {
    throw new DomainError('conflict', `an identity provider with id ${input.id} already exists`);
  }
  const row: ProviderRow = {
    id: input.id,
    name,
    issuer,
    client_id: input.clientId,
    client_secret_sealed: input.clientSecret ? box.seal(input.clientSecret, `idp-secret:${input.id}`) : null,
    scope: scope.join(' '),
    button_label: input.buttonLabel?.trim() || null,
    allow_signup: input.allowSignup ? 1 : 0,
    link_by_verified_email: input.linkByVerifiedEmail ? 1 : 0,
    refresh_profile: input.refreshProfile === false ? 0 : 1,
    role_claim: input.roleClaim ?? null,
    role_map: Object.keys(roleMap).length ? JSON.stringify(roleMap) : null,
    disabled: 0,
    created_at: new Date().toISOString(),
  };
  await db.insertInto('identity_providers').values(row).execute();
  return toIdentityProvider(row);
}

export async function findProviderRow(db: Kysely<Database>, id: string): Promise<ProviderRow | undefined> {
  if (!canMatchStored(id)) return undefined;
  return db.selectFrom('identity_providers').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function requireIdentityProvider(db: Kysely<Database>, id: string): Promise<IdentityProvider> {
  const row = await findProviderRow(db, id);
  if (!row) throw new DomainError('not_found', `no identity provider with id ${id}`);
  return toIdentityProvider(row);
}

// The login page lists the enabled providers. The flag is a literal, not a parameter: in a
// statement that sorts with ORDER BY, SQLite's planner weighs a parameter's value, and then
// prepares the statement anew at every run.
const enabledProviders = reusableQuery((db) => db.selectFrom('identity_providers').selectAll().where('disabled', '=', sql.lit(0)).orderBy('name'));

export async function listIdentityProviders(db: Kysely<Database>, options: { enabledOnly?: boolean } = {}): Promise<IdentityProvider[]> {
  const rows = options.enabledOnly ? await enabledProviders(db, []) : await db.selectFrom('identity_providers').selectAll().orderBy('name').execute();
  return rows.map(toIdentityProvider);
}

export async function setIdentityProviderDisabled(db: Kysely<Database>, id: string, disabled: boolean): Promise<IdentityProvider> {
  await requireIdentityProvider(db, id);
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('identity_providers').set({ disabled: disabled ? 1 : 0 }).where('id', '=', id).execute();
    // Answers already taken from the provider (a link waiting for its password step, a sign-in
    // about to finish) are dropped for good: enabling it again must not bring them back. Flows
    // still waiting for its answer stay, so that the answer is refused as from a disabled provider.
    if (disabled) {
      await trx
        .deleteFrom('federation_flows')
        .where('provider_id', '=', id)
        .where((eb) => eb.or([eb('pending_subject', 'is not', null), eb('resolved_user_id', 'is not', null)]))
        .execute();
    }
  });
  return requireIdentityProvider(db, id);
}

export async function deleteIdentityProvider(db: Kysely<Database>, id: string): Promise<void> {
  await requireIdentityProvider(db, id);
  await db.transaction().execute(async (trx) => {
    // Flows name their provider without a foreign key; none may outlive it, or come back to a
    // provider created later with the same id.
    await trx.deleteFrom('federation_flows').where('provider_id', '=', id).execute();
    await trx.deleteFrom('identity_providers').where('id', '=', id).execute();
  });
}

/** The upstream client secret, opened from its sealed copy. */
export function clientSecretOf(row: ProviderRow, box: SecretBox): string | undefined {
  return row.client_secret_sealed ? box.open(row.client_secret_sealed, `idp-secret:${row.id}`) : undefined;
}
