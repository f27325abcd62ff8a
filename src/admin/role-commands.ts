import type { Kysely } from 'kysely';
import type { CommandGroup } from './cli.ts';
import type { Database } from '../db/schema.ts';
import {
  assignRole,
  assignRoleToClient,
  createRole,
  deleteRole,
  listRoles,
  requireRole,
  revokeRole,
  revokeRoleFromClient,
} from '../rbac/roles.ts';
import { grantPermission, membersOfRole, permissionsOfRole, ungrantPermission } from '../rbac/permissions.ts';
import { normalizeEmail } from '../accounts/emails.ts';
import { UsageError } from './io.ts';

type Member = { kind: 'user'; email: string } | { kind: 'client'; clientId: string };

/** Exactly one of --user EMAIL or --client ID. */
function memberOf(values: Record<string, unknown>): Member {
  const user = typeof values.user === 'string' && values.user ? values.user : undefined;
  const client = typeof values.client === 'string' && values.client ? values.client : undefined;
  if (user && client) throw new UsageError('give either --user EMAIL or --client ID, not both');
  if (user) return { kind: 'user', email: normalizeEmail(user) };
  if (client) return { kind: 'client', clientId: client };
  throw new UsageError('--user EMAIL or --client ID is required');
}

function permissionArgs(values: Record<string, unknown>): { api: string; permissions: string[] } {
  const api = values.api;
  const permissions = values.permission as string[] | undefined;
  if (typeof api !== 'string' || !api) throw new UsageError('--api IDENTIFIER is required');
  if (!permissions?.length) throw new UsageError('--permission SCOPE is required');
  return { api, permissions: [...new Set(permissions)] };
}

/** Grants or ungrants every --permission, all or nothing: a bad one late in the list undoes the rest. */
async function changePermissions(
  db: Kysely<Database>,
  role: string,
  values: Record<string, unknown>,
  change: (db: Kysely<Database>, role: string, api: string, scope: string) => Promise<unknown>,
) {
  const { api, permissions } = permissionArgs(values);
  await db.transaction().execute(async (trx) => {
    for (const permission of permissions) await change(trx, role, api, permission);
  });
  return { api, permissions };
}

async function describeRole(db: Kysely<Database>, name: string) {
  const role = await requireRole(db, name);
  const permissions = (await permissionsOfRole(db, role.id)).map(({ api, scope }) => ({ api, scope }));
  const members = await membersOfRole(db, role.id);
  const json = { name: role.name, description: role.description, permissions, members, createdAt: role.created_at };
  const human = [
    `name:         ${role.name}`,
    `description:  ${role.description ?? '-'}`,
    `permissions:  ${permissions.length ? '' : '-'}`,
    ...permissions.map((p) => `  ${p.api}  ${p.scope}`),
    `users:        ${members.users.join(', ') || '-'}`,
    `clients:      ${members.clients.map((c) => `${c.name} (${c.clientId})`).join(', ') || '-'}`,
  ];
  return { json, human };
}

export const roleCommands: CommandGroup = {
  create: {
    summary: 'create a role',
    changes: true,
    usage: 'NAME [--description TEXT] [--json]',
    options: { description: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const role = await createRole(db, positionals[0]!, values.description as string | undefined);
      print(role, `created role ${role.name}`);
    },
  },
  list: {
    summary: 'list roles with their member counts',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const roles = await listRoles(db);
      print(
        roles,
        roles.map((r) => `${r.name}  ${r.members} member${r.members === 1 ? '' : 's'}  ${r.description ?? ''}`.trimEnd()),
      );
    },
  },
  show: {
    summary: 'show a role: its permissions, and the people and services that have it',
    usage: 'NAME [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      const { json, human } = await describeRole(db, positionals[0]!);
      print(json, human);
    },
  },
  delete: {
    summary: 'delete a role; everyone who had it loses its permissions',
    changes: true,
    usage: 'NAME [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      await deleteRole(db, positionals[0]!);
      print({ deleted: positionals[0] }, `deleted role ${positionals[0]}`);
    },
  },
  grant: {
    summary: 'let a role use scopes (permissions) of an API',
    changes: true,
    usage: 'NAME --api IDENTIFIER --permission SCOPE [--permission SCOPE …] [--json]',
    options: { api: { type: 'string' }, permission: { type: 'string', multiple: true } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const { api, permissions } = await changePermissions(db, positionals[0]!, values, grantPermission);
      print({ role: positionals[0], api, granted: permissions }, `role ${positionals[0]} may now use ${permissions.join(' ')} on ${api}`);
    },
  },
  ungrant: {
    summary: 'take scopes (permissions) of an API away from a role',
    changes: true,
    usage: 'NAME --api IDENTIFIER --permission SCOPE [--permission SCOPE …] [--json]',
    options: { api: { type: 'string' }, permission: { type: 'string', multiple: true } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const { api, permissions } = await changePermissions(db, positionals[0]!, values, ungrantPermission);
      print({ role: positionals[0], api, ungranted: permissions }, `role ${positionals[0]} may no longer use ${permissions.join(' ')} on ${api}`);
    },
  },
  assign: {
    summary: 'give a role to a person or a service client',
    changes: true,
    usage: 'NAME (--user EMAIL | --client ID) [--json]',
    options: { user: { type: 'string' }, client: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const member = memberOf(values);
      const role = positionals[0]!;
      const who = member.kind === 'user' ? member.email : `client ${member.clientId}`;
      const { changed } = member.kind === 'user' ? await assignRole(db, role, member.email) : await assignRoleToClient(db, role, member.clientId);
      print({ role, ...member, changed }, changed ? `${who} now has role ${role}` : `${who} already had role ${role}`);
    },
  },
  revoke: {
    summary: 'take a role away from a person or a service client',
    changes: true,
    usage: 'NAME (--user EMAIL | --client ID) [--json]',
    options: { user: { type: 'string' }, client: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const member = memberOf(values);
      const role = positionals[0]!;
      const who = member.kind === 'user' ? member.email : `client ${member.clientId}`;
      const { changed } = member.kind === 'user' ? await revokeRole(db, role, member.email) : await revokeRoleFromClient(db, role, member.clientId);
      print({ role, ...member, changed }, changed ? `${who} no longer has role ${role}` : `${who} did not have role ${role}`);
    },
  },
};
