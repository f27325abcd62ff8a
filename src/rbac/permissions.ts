import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { requireApi } from '../apis/apis.ts';
import { requireRole } from './roles.ts';

/** A permission and the role it comes through. */
export interface HeldPermission {
  api: string;
  scope: string;
  role: string;
}

export async function grantPermission(db: Kysely<Database>, roleName: string, apiIdentifier: string, scope: string): Promise<{ changed: boolean }> {
  const role = await requireRole(db, roleName);
  const api = await requireApi(db, apiIdentifier);
  if (!api.scopes.some((s) => s.name === scope)) {
    throw new DomainError('not_found', `API ${apiIdentifier} has no scope ${scope} (add it with api add-scope)`);
  }
  const result = await db
    .insertInto('role_permissions')
    .values({ role_id: role.id, api_id: api.id, scope, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.columns(['role_id', 'api_id', 'scope']).doNothing())
    .executeTakeFirst();
  return { changed: Number(result.numInsertedOrUpdatedRows ?? 0) > 0 };
}

export async function ungrantPermission(db: Kysely<Database>, roleName: string, apiIdentifier: string, scope: string): Promise<void> {
  const role = await requireRole(db, roleName);
  const api = await requireApi(db, apiIdentifier);
  const result = await db
    .deleteFrom('role_permissions')
    .where('role_id', '=', role.id)
    .where('api_id', '=', api.id)
    .where('scope', '=', scope)
    .executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw new DomainError('not_found', `role ${roleName} does not grant ${scope} on ${apiIdentifier}`);
}

function heldQuery(db: Kysely<Database>) {
  return db
    .selectFrom('role_permissions')
    .innerJoin('roles', 'roles.id', 'role_permissions.role_id')
    .innerJoin('apis', 'apis.id', 'role_permissions.api_id')
    .select(['apis.identifier as api', 'role_permissions.scope as scope', 'roles.name as role'])
    .orderBy('apis.identifier')
    .orderBy('role_permissions.scope')
    .orderBy('roles.name');
}

export async function permissionsOfRole(db: Kysely<Database>, roleId: string): Promise<HeldPermission[]> {
  return heldQuery(db).where('role_permissions.role_id', '=', roleId).execute();
}

export async function permissionsOfUser(db: Kysely<Database>, userId: string): Promise<HeldPermission[]> {
  return heldQuery(db)
    .where('role_permissions.role_id', 'in', (eb) => eb.selectFrom('user_roles').select('role_id').where('user_id', '=', userId))
    .execute();
}

export async function permissionsOfClient(db: Kysely<Database>, clientId: string): Promise<HeldPermission[]> {
  return heldQuery(db)
    .where('role_permissions.role_id', 'in', (eb) => eb.selectFrom('client_roles').select('role_id').where('client_id', '=', clientId))
    .execute();
}

/** Which roles grant each scope of an API. */
export async function grantsOfApi(db: Kysely<Database>, apiIdentifier: string): Promise<HeldPermission[]> {
  return heldQuery(db).where('apis.identifier', '=', apiIdentifier).execute();
}

export interface RoleMembers {
  users: string[];
  clients: { clientId: string; name: string }[];
}

export async function membersOfRole(db: Kysely<Database>, roleId: string): Promise<RoleMembers> {
  const users = await db
    .selectFrom('user_roles')
    .innerJoin('users', 'users.id', 'user_roles.user_id')
    .select('users.email')
    .where('user_roles.role_id', '=', roleId)
    .orderBy('users.email')
    .execute();
  const clients = await db
    .selectFrom('client_roles')
    .innerJoin('clients', 'clients.client_id', 'client_roles.client_id')
    .select(['clients.client_id as clientId', 'clients.name'])
    .where('client_roles.role_id', '=', roleId)
    .orderBy('clients.name')
    .execute();
  return { users: users.map((u) => u.email), clients };
}

export interface SubjectAccess {
  /** The subject's role names. */
  roles: string[];
  /** The scopes of one API that those roles grant. */
  granted: ReadonlySet<string>;
}

/** A person's roles and what they grant on one API, in one query (a hot path: every token). */
export async function accessOfUser(db: Kysely<Database>, userId: string, apiId: string): Promise<SubjectAccess> {
  const rows = await db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .leftJoin('role_permissions', (join) => join.onRef('role_permissions.role_id', '=', 'roles.id').on('role_permissions.api_id', '=', apiId))
    .select(['roles.name as role', 'role_permissions.scope as scope'])
    .where('user_roles.user_id', '=', userId)
    .execute();
  return toAccess(rows);
}

/** A service client's roles and what they grant on one API, plus the scopes it was registered with. */
export async function accessOfClient(db: Kysely<Database>, clientId: string, apiId: string): Promise<SubjectAccess & { registered: ReadonlySet<string> }> {
  const rows = await db
    .selectFrom('clients')
    .leftJoin('client_roles', 'client_roles.client_id', 'clients.client_id')
    .leftJoin('roles', 'roles.id', 'client_roles.role_id')
    .leftJoin('role_permissions', (join) => join.onRef('role_permissions.role_id', '=', 'roles.id').on('role_permissions.api_id', '=', apiId))
    .select(['clients.scope as registered', 'roles.name as role', 'role_permissions.scope as scope'])
    .where('clients.client_id', '=', clientId)
    .execute();
  return { ...toAccess(rows), registered: new Set((rows[0]?.registered ?? '').split(' ').filter(Boolean)) };
}

function toAccess(rows: { role: string | null; scope: string | null }[]): SubjectAccess {
  const roles = new Set<string>();
  const granted = new Set<string>();
  for (const row of rows) {
    if (row.role) roles.add(row.role);
    if (row.scope) granted.add(row.scope);
  }
  return { roles: [...roles].sort(), granted };
}
