import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { normalizeEmail } from './emails.ts';
import type { PasswordHasher } from './passwords.ts';
import { MAX_PASSWORD_LENGTH } from './password-policy.ts';
import { findUserByEmail, type User } from './users.ts';

/**
 * Checks an email and password. Every failure (unknown email, wrong password, disabled account,
 * no password set) costs one argon2 verification and returns the same null, so neither the answer
 * nor its timing tells an attacker which emails exist.
 */
export async function verifyCredentials(
  db: Kysely<Database>,
  hasher: PasswordHasher,
  email: string,
  password: string,
): Promise<User | null> {
  const candidate = password.length <= MAX_PASSWORD_LENGTH * 4 ? password : '';
  const user = email.length <= 254 ? await findUserByEmail(db, normalizeEmail(email)) : undefined;
  if (!user?.password_hash) {
    await hasher.verifyNothing(candidate);
    return null;
  }
  const ok = await hasher.verify(user.password_hash, candidate);
  return ok && !user.disabled ? user : null;
}
