import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, UserTable } from '../db/schema.ts';
import { isPlausibleEmail, normalizeEmail } from './emails.ts';
import type { PasswordHasher } from './passwords.ts';
import { passwordProblem } from './password-policy.ts';
import { DomainError } from '../errors.ts';
import { revokeEverythingOfAccount } from '../oidc/adapter.ts';
import { canMatchStored } from '../db/text.ts';
import { reusableQuery } from '../db/reusable-query.ts';

export type User = Selectable<UserTable>;

// Every request that acts for a person looks them up by id.
const userById = reusableQuery((db) => db.selectFrom('users').selectAll().where('id', '=', ''));

export async function findUserById(db: Kysely<Database>, id: string): Promise<User | undefined> {
  if (!canMatchStored(id)) return undefined;
  const [user] = await userById(db, [id]);
  return user;
}

// And every password sign-in by email.
const userByEmail = reusableQuery((db) => db.selectFrom('users').selectAll().where('email', '=', ''));

export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<User | undefined> {
  if (!canMatchStored(email)) return undefined;
  const [user] = await userByEmail(db, [normalizeEmail(email)]);
  return user;
}

export async function requireUserByEmail(db: Kysely<Database>, email: string): Promise<User> {
  const user = await findUserByEmail(db, email);
  if (!user) throw new DomainError('not_found', `no user with email ${normalizeEmail(email)}`);
  return user;
}

export async function listUsers(db: Kysely<Database>): Promise<User[]> {
  return db.selectFrom('users').selectAll().orderBy('email').execute();
}

export interface NewUser {
  email: string;
  name?: string | undefined;
  password: string;
  emailVerified?: boolean;
  roles?: string[];
}

function checkPassword(password: string, email: string): void {
  const problem = passwordProblem(password, { email });
  if (problem) throw new DomainError('weak_password', problem);
}

export async function createUser(db: Kysely<Database>, hasher: PasswordHasher, input: NewUser): Promise<User> {
  const email = normalizeEmail(input.email);
  if (!isPlausibleEmail(email)) throw new DomainError('invalid_input', `not an email address: ${JSON.stringify(input.email)}`);
  const name = input.name?.trim() || null;
  if (name && name.length > 200) throw new DomainError('invalid_input', 'name must be at most 200 characters');
  checkPassword(input.password, email);
  const roleNames = [...new Set(input.roles ?? [])];
  // Validate everything before the slow hash and before writing, so a refusal writes nothing.
  if (await findUserByEmail(db, email)) throw new DomainError('conflict', `a user with email ${email} already exists`);
  const roles = roleNames.length
    ? await db.selectFrom('roles').select(['id', 'name']).where('name', 'in', roleNames).execute()
    : [];
  const unknown = roleNames.filter((r) => !roles.some((row) => row.name === r));
  if (unknown.length) throw new DomainError('not_found', `no role named ${unknown.join(', ')}`);

  const passwordHash = await hasher.hash(input.password);
  const now = new Date().toISOString();
  const user: User = {
    id: crypto.randomUUID(),
    email,
    name,
    password_hash: passwordHash,
    email_verified: input.emailVerified ? 1 : 0,
    disabled: 0,
    picture: null,
    created_at: now,
    updated_at: now,
  };
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('users').values(user).execute();
    if (roles.length) {
      await trx
        .insertInto('user_roles')
        .values(roles.map((r) => ({ user_id: user.id, role_id: r.id, created_at: now })))
        .execute();
    }
  });
  return user;
}

/** Disabling also ends the user's sessions and revokes their tokens, in the same transaction. */
export async function setUserDisabled(db: Kysely<Database>, email: string, disabled: boolean): Promise<User> {
  const user = await requireUserByEmail(db, email);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('users')
      .set({ disabled: disabled ? 1 : 0, updated_at: new Date().toISOString() })
      .where('id', '=', user.id)
      .execute();
    if (disabled) await revokeEverythingOfAccount(trx, user.id);
  });
  return { ...user, disabled: disabled ? 1 : 0 };
}

export async function setUserPassword(
  db: Kysely<Database>,
  hasher: PasswordHasher,
  email: string,
  password: string,
): Promise<User> {
  const user = await requireUserByEmail(db, email);
  checkPassword(password, user.email);
  const passwordHash = await hasher.hash(password);
  await db
    .updateTable('users')
    .set({ password_hash: passwordHash, updated_at: new Date().toISOString() })
    .where('id', '=', user.id)
    .execute();
  return user;
}
