import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { findUserByEmail, findUserById, type User } from '../accounts/users.ts';
import { isPlausibleEmail, normalizeEmail } from '../accounts/emails.ts';
import type { IdentityProvider } from './providers.ts';
import { isUniqueViolation } from '../db/conflicts.ts';

/** What the upstream ID token says about the person. */
export interface UpstreamClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  name?: unknown;
  picture?: unknown;
  [claim: string]: unknown;
}

export type Resolution =
  | { kind: 'signed_in'; user: User; created: boolean; linked: boolean }
  | { kind: 'link_required'; email: string }
  | { kind: 'refused'; reason: 'disabled' | 'no_account' };

const text = (value: unknown, max: number) => (typeof value === 'string' && value.length <= max ? value : undefined);

function rolesFromClaims(provider: IdentityProvider, claims: UpstreamClaims): string[] {
  if (!provider.roleClaim) return [];
  const raw = claims[provider.roleClaim];
  const values = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  // The values are the upstream's to choose: "constructor" or "__proto__" would otherwise find
  // what every object inherits, and hand a function to the role look-up.
  const mapped = values.filter((v): v is string => typeof v === 'string' && Object.hasOwn(provider.roleMap, v)).map((v) => provider.roleMap[v]);
  return [...new Set(mapped.filter((r): r is string => typeof r === 'string'))];
}

async function grantMappedRoles(trx: Kysely<Database>, userId: string, roleNames: string[]) {
  if (!roleNames.length) return;
  const roles = await trx.selectFrom('roles').select('id').where('name', 'in', roleNames).execute();
  const now = new Date().toISOString();
  for (const role of roles) {
    await trx.insertInto('user_roles').values({ user_id: userId, role_id: role.id, created_at: now }).onConflict((oc) => oc.columns(['user_id', 'role_id']).doNothing()).execute();
  }
}

async function refreshProfile(trx: Kysely<Database>, user: User, claims: UpstreamClaims) {
  const name = text(claims.name, 200);
  const picture = text(claims.picture, 2000);
  const raw = text(claims.email, 254);
  const email = raw && isPlausibleEmail(normalizeEmail(raw)) ? normalizeEmail(raw) : undefined;
  // A changed email is taken only when the upstream vouches for it and no one else has it.
  const newEmail = email && email !== user.email && claims.email_verified === true && !(await findUserByEmail(trx, email)) ? email : undefined;
  const verified = claims.email_verified === true && (email === user.email || newEmail !== undefined);
  await trx
    .updateTable('users')
    .set({
      ...(name ? { name } : {}),
      ...(newEmail ? { email: newEmail } : {}),
      ...(picture && /^https:\/\//.test(picture) ? { picture } : {}),
      ...(verified ? { email_verified: 1 } : {}),
      updated_at: new Date().toISOString(),
    })
    .where('id', '=', user.id)
    .execute();
}

export interface AccountLink {
  provider: string;
  subject: string;
  linkedAt: string;
}

export async function linksOfUser(db: Kysely<Database>, userId: string): Promise<AccountLink[]> {
  return db
    .selectFrom('user_links')
    .select(['provider_id as provider', 'subject', 'created_at as linkedAt'])
    .where('user_id', '=', userId)
    .orderBy('provider_id')
    .execute();
}

/** Removes a person's link to a provider; says whether there was one. */
export async function unlinkAccount(db: Kysely<Database>, userId: string, providerId: string): Promise<boolean> {
  const result = await db.deleteFrom('user_links').where('user_id', '=', userId).where('provider_id', '=', providerId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Links an upstream account to a user unless it is linked already (to them, by a sign-in in
 * another tab, or to someone else); says whether this call made the link.
 */
export async function linkAccount(trx: Kysely<Database>, providerId: string, subject: string, userId: string): Promise<boolean> {
  const result = await trx
    .insertInto('user_links')
    .values({ provider_id: providerId, subject, user_id: userId, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.columns(['provider_id', 'subject']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/**
 * Finds or makes the Latchkey user for an upstream account, in one transaction so nothing is
 * left half-made:
 * 1. a link by (provider, subject) signs that user in;
 * 2. an existing user with the same email is linked automatically only when the provider is
 *    trusted to do so (--link-by-verified-email) and the email is verified on both sides;
 *    otherwise the person must sign in with their password once to link;
 * 3. no user: one is created when the provider allows sign-up and says the email is verified.
 *
 * Both rules stop account pre-hijacking: someone who does not own an address registers it
 * unverified (upstream, or here) so that the owner, signing in later, is linked into an
 * account the squatter can still use.
 */
export async function resolveUpstreamAccount(db: Kysely<Database>, provider: IdentityProvider, claims: UpstreamClaims): Promise<Resolution> {
  try {
    return await resolveOnce(db, provider, claims);
  } catch (err) {
    // Two answers for the same new upstream account (two tabs) may both find nothing and both
    // make it; the one that commits second is refused by the unique email, and a second look
    // finds what the first made.
    if (!isUniqueViolation(err)) throw err;
    return resolveOnce(db, provider, claims);
  }
}

function resolveOnce(db: Kysely<Database>, provider: IdentityProvider, claims: UpstreamClaims): Promise<Resolution> {
  return db.transaction().execute(async (trx): Promise<Resolution> => {
    const link = await trx.selectFrom('user_links').select('user_id').where('provider_id', '=', provider.id).where('subject', '=', claims.sub).executeTakeFirst();
    if (link) {
      const user = await findUserById(trx, link.user_id);
      if (!user || user.disabled) return { kind: 'refused', reason: 'disabled' };
      if (provider.refreshProfile) await refreshProfile(trx, user, claims);
      await grantMappedRoles(trx, user.id, rolesFromClaims(provider, claims));
      return { kind: 'signed_in', user: (await findUserById(trx, user.id))!, created: false, linked: false };
    }

    const rawEmail = text(claims.email, 254);
    const email = rawEmail && isPlausibleEmail(normalizeEmail(rawEmail)) ? normalizeEmail(rawEmail) : undefined;
    const vouched = claims.email_verified === true;
    const existing = email ? await findUserByEmail(trx, email) : undefined;
    if (existing) {
      if (existing.disabled) return { kind: 'refused', reason: 'disabled' };
      if (!(provider.linkByVerifiedEmail && vouched && existing.email_verified === 1)) return { kind: 'link_required', email: existing.email };
      await linkAccount(trx, provider.id, claims.sub, existing.id);
      if (provider.refreshProfile) await refreshProfile(trx, existing, claims);
      await grantMappedRoles(trx, existing.id, rolesFromClaims(provider, claims));
      return { kind: 'signed_in', user: (await findUserById(trx, existing.id))!, created: false, linked: true };
    }

    if (!provider.allowSignup || !email || !vouched) return { kind: 'refused', reason: 'no_account' };
    const now = new Date().toISOString();
    const picture = text(claims.picture, 2000);
    const user: User = {
      id: crypto.randomUUID(),
      email,
      name: text(claims.name, 200) ?? null,
      password_hash: null,
      email_verified: 1,
      disabled: 0,
      picture: picture && /^https:\/\//.test(picture) ? picture : null,
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('users').values(user).execute();
    await linkAccount(trx, provider.id, claims.sub, user.id);
    await grantMappedRoles(trx, user.id, rolesFromClaims(provider, claims));
    return { kind: 'signed_in', user, created: true, linked: true };
  });
}
