import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, RoleTable } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { requireUserByEmail } from '../accounts/users.ts';
import { requireClient } from '../clients/clients.ts';

/** Built in, and never deleted: Latchkey's own administration requires it. */
export const ADMIN_ROLE = 'latchkey:admin';

export type Role = Selectable<RoleTable>;

// Role names travel in tokens and on command lines: keep them short and unambiguous.
const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;

export async function findRoleByName(db: Kysely<Database>, name: string): Promise<Role | undefined> {
  return db.selectFrom('roles').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function requireRole(db: Kysely<Database>, name: string): Promise<Role> {
  const role = await findRoleByName(db, name);
  if (!role) throw new DomainError('not_found', `no role named ${name}`);
  return role;
}

export async function createRole(db: Kysely<Database>, name: string, description?: string): Promise<Role> {
  if (!ROLE_NAME.test(name)) {
    throw new DomainError('invalid_input', 'role name must be 1-64 letters, digits or : . _ - and start with a letter or digit');
  }
  if (description !== undefined && description.length > 500) {
    throw new DomainError('invalid_input', 'description must be at most 500 characters');
  }
  if (await findRoleByName(db, name)) throw new DomainError('conflict', `a role named ${name} already exists`);
  const role: Role = {
    id: crypto.randomUUID(),
    name,
    description: description?.trim() || null,
    created_at: new Date().toISOString(),
  };
  await db.insertInto('roles').values(role).execute();
  return role;
}

export interface RoleSummary extends Role {
  members: number;
}

export async function listRoles(db: Kysely<Database>): Promise<RoleSummary[]> {
  const rows = await db
    .selectFrom('roles')
    .select(['roles.id', 'roles.name', 'roles.description', 'roles.created_at'])
    .select((eb) => [
      eb.selectFrom('user_roles').whereRef('user_roles.role_id', '=', 'roles.id').select(eb.fn.countAll<number>().as('n')).as('users'),
      eb.selectFrom('client_roles').whereRef('client_roles.role_id', '=', 'roles.id').select(eb.fn.countAll<number>().as('n')).as('clients'),
    ])
    .orderBy('roles.name')
    .execute();
  return rows.map(({ users, clients, ...r }) => ({ ...r, members: Number(users ?? 0) + Number(clients ?? 0) }));
}

/** Deletes a role; its assignments and permissions go with it. */
export async function deleteRole(db: Kysely<Database>, name: string): Promise<void> {
  const role = await requireRole(db, name);
  if (role.name === ADMIN_ROLE) throw new DomainError('invalid_input', `${ADMIN_ROLE} is built in and cannot be deleted`);
  await db.deleteFrom('roles').where('id', '=', role.id).execute();
}

export async function assignRole(db: Kysely<Database>, roleName: string, email: string): Promise<{ changed: boolean }> {
  const role = await requireRole(db, roleName);
  const user = await requireUserByEmail(db, email);
  const result = await db
    .insertInto('user_roles')
    .values({ user_id: user.id, role_id: role.id, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.columns(['user_id', 'role_id']).doNothing())
    .executeTakeFirst();
  return { changed: Number(result.numInsertedOrUpdatedRows ?? 0) > 0 };
}

export async function revokeRole(db: Kysely<Database>, roleName: string, email: string): Promise<{ changed: boolean }> {
  const role = await requireRole(db, roleName);
  const user = await requireUserByEmail(db, email);
  const result = await db
    .deleteFrom('user_roles')
    .where('user_id', '=', user.id)
    .where('role_id', '=', role.id)
    .executeTakeFirst();
  return { changed: Number(result.numDeletedRows) > 0 };
}

export async function assignRoleToClient(db: Kysely<Database>, roleName: string, clientId: string): Promise<{ changed: boolean }> {
  const role = await requireRole(db, roleName);
  await requireClient(db, clientId);
  const result = await db
    .insertInto('client_roles')
    .values({ client_id: clientId, role_id: role.id, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.columns(['client_id', 'role_id']).doNothing())
    .executeTakeFirst();
  return { changed: Number(result.numInsertedOrUpdatedRows ?? 0) > 0 };
}

export async function revokeRoleFromClient(db: Kysely<Database>, roleName: string, clientId: string): Promise<{ changed: boolean }> {
  const role = await requireRole(db, roleName);
  await requireClient(db, clientId);
  const result = await db.deleteFrom('client_roles').where('client_id', '=', clientId).where('role_id', '=', role.id).executeTakeFirst();
  return { changed: Number(result.numDeletedRows) > 0 };
}

export async function roleNamesOfClient(db: Kysely<Database>, clientId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('client_roles')
    .innerJoin('roles', 'roles.id', 'client_roles.role_id')
    .select('roles.name')
    .where('client_roles.client_id', '=', clientId)
    .orderBy('roles.name')
    .execute();
  return rows.map((r) => r.name);
}

export async function roleNamesOfUser(db: Kysely<Database>, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select('roles.name')
    .where('user_roles.user_id', '=', userId)
    .orderBy('roles.name')
    .execute();
  return rows.map((r) => r.name);
}
