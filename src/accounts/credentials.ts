import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { normalizeEmail } from './emails.ts';
import type { PasswordHasher } from './passwords.ts';
import { MAX_PASSWORD_LENGTH } from './password-policy.ts';
import { findUserByEmail, type User } from './users.ts';

export type SignInFailure = 'unknown_email' | 'no_password' | 'wrong_password' | 'disabled';

export type CredentialCheck = { user: User; failure?: undefined } | { user: null; failure: SignInFailure };

/**
 * Checks an email and password. Every outcome costs exactly one argon2 verification (an
 * unknown email verifies against a decoy hash), and every failure looks the same to the
 * caller's caller: the reason is for the audit trail only, so neither the answer nor its
 * timing tells an attacker which emails exist.
 */
export async function verifyCredentials(
  db: Kysely<Database>,
  hasher: PasswordHasher,
  email: string,
  password: string,
): Promise<CredentialCheck> {
  const candidate = password.length <= MAX_PASSWORD_LENGTH * 4 ? password : '';
  const user = email.length <= 254 ? await findUserByEmail(db, normalizeEmail(email)) : undefined;
  if (!user?.password_hash) {
    await hasher.verifyNothing(candidate);
    return { user: null, failure: user ? 'no_password' : 'unknown_email' };
  }
  const ok = await hasher.verify(user.password_hash, candidate);
  if (!ok) return { user: null, failure: 'wrong_password' };
  if (user.disabled) return { user: null, failure: 'disabled' };
  return { user };
}
