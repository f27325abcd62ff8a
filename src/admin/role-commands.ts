import type { CommandGroup } from './cli.ts';
import { assignRole, createRole, listRoles, revokeRole } from '../rbac/roles.ts';
import { normalizeEmail } from '../accounts/emails.ts';
import { UsageError } from './io.ts';

function requiredUser(values: Record<string, unknown>): string {
  const user = values.user;
  if (typeof user !== 'string' || !user) throw new UsageError('--user EMAIL is required');
  return normalizeEmail(user);
}

export const roleCommands: CommandGroup = {
  create: {
    summary: 'create a role',
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
        roles.length ? roles.map((r) => `${r.name}  ${r.members} member${r.members === 1 ? '' : 's'}  ${r.description ?? ''}`.trimEnd()) : 'no roles',
      );
    },
  },
  assign: {
    summary: 'give a role to a person',
    usage: 'NAME --user EMAIL [--json]',
    options: { user: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const email = requiredUser(values);
      const { changed } = await assignRole(db, positionals[0]!, email);
      print({ role: positionals[0], user: email, changed }, changed ? `${email} now has role ${positionals[0]}` : `${email} already had role ${positionals[0]}`);
    },
  },
  revoke: {
    summary: 'take a role away from a person',
    usage: 'NAME --user EMAIL [--json]',
    options: { user: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const email = requiredUser(values);
      const { changed } = await revokeRole(db, positionals[0]!, email);
      print({ role: positionals[0], user: email, changed }, changed ? `${email} no longer has role ${positionals[0]}` : `${email} did not have role ${positionals[0]}`);
    },
  },
};
