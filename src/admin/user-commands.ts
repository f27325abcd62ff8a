import type { CommandContext, CommandGroup } from './cli.ts';
import { readNewPassword, UsageError } from './io.ts';
import { DomainError } from '../errors.ts';
import { linksOfUser, unlinkAccount } from '../federation/linking.ts';
import { createPasswordHasher } from '../accounts/passwords.ts';
import { createUser, listUsers, requireUserByEmail, setUserDisabled, setUserPassword, type User } from '../accounts/users.ts';
import { roleNamesOfUser } from '../rbac/roles.ts';
import { revokeEverythingOfAccount, sessionsOfAccount } from '../oidc/adapter.ts';
import { notifySessionsEnded } from '../oidc/backchannel-logout.ts';
import { adminProvider } from './admin-provider.ts';
import { permissionsOfUser, type HeldPermission } from '../rbac/permissions.ts';

function publicUser(user: User, roles: string[]) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    emailVerified: user.email_verified === 1,
    disabled: user.disabled === 1,
    roles,
    createdAt: user.created_at,
    updatedAt: user.updated_at,
  };
}

function describeUser(user: User, roles: string[]): string[] {
  return [
    `id:        ${user.id}`,
    `email:     ${user.email}${user.email_verified ? ' (verified)' : ''}`,
    `name:      ${user.name ?? '-'}`,
    `status:    ${user.disabled ? 'disabled' : 'active'}`,
    `roles:     ${roles.join(', ') || '-'}`,
    `created:   ${user.created_at}`,
  ];
}

export function describePermissions(permissions: HeldPermission[]): string[] {
  return [`permissions: ${permissions.length ? '' : '-'}`, ...permissions.map((p) => `  ${p.api}  ${p.scope}  (through ${p.role})`)];
}

const emailArg = (ctx: CommandContext) => ctx.positionals[0] ?? (ctx.values.email as string | undefined) ?? '';

export const userCommands: CommandGroup = {
  create: {
    summary: 'add a person; the password is asked for, or read from stdin with --password-stdin',
    changes: true,
    usage: '--email EMAIL [--name NAME] [--role ROLE …] [--email-verified] [--password-stdin] [--json]',
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string', multiple: true },
      'email-verified': { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
    },
    async run({ db, config, io, values, print }) {
      const password = await readNewPassword(io, values['password-stdin'] === true);
      const user = await createUser(db, createPasswordHasher(config.argon2), {
        email: (values.email as string | undefined) ?? '',
        name: values.name as string | undefined,
        password,
        emailVerified: values['email-verified'] === true,
        roles: values.role as string[] | undefined,
      });
      const roles = await roleNamesOfUser(db, user.id);
      print(publicUser(user, roles), describeUser(user, roles));
    },
  },
  list: {
    summary: 'list people',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const users = await listUsers(db);
      const withRoles = await Promise.all(users.map(async (u) => publicUser(u, await roleNamesOfUser(db, u.id))));
      print(
        withRoles,
        withRoles.length
          ? withRoles.map((u) => `${u.email}  ${u.disabled ? 'disabled' : 'active  '}  ${u.roles.join(',') || '-'}  ${u.name ?? ''}`.trimEnd())
          : 'no users',
      );
    },
  },
  show: {
    summary: 'show one person, their roles and the permissions those roles give',
    usage: 'EMAIL [--json]',
    options: {},
    positionals: 1,
    async run(ctx) {
      const user = await requireUserByEmail(ctx.db, emailArg(ctx));
      const roles = await roleNamesOfUser(ctx.db, user.id);
      const permissions = await permissionsOfUser(ctx.db, user.id);
      const links = await linksOfUser(ctx.db, user.id);
      ctx.print({ ...publicUser(user, roles), permissions, links }, [
        ...describeUser(user, roles),
        ...describePermissions(permissions),
        `linked:    ${links.map((l) => `${l.provider} (${l.subject})`).join(', ') || '-'}`,
      ]);
    },
  },
  disable: {
    summary: 'stop a person from signing in; their sessions and refresh tokens stop working',
    changes: true,
    usage: 'EMAIL [--json]',
    options: {},
    positionals: 1,
    async run(ctx) {
      const user = await setUserDisabled(ctx.db, emailArg(ctx), true);
      ctx.print({ email: user.email, disabled: true }, `disabled ${user.email}`);
    },
  },
  enable: {
    summary: 'let a disabled person sign in again',
    changes: true,
    usage: 'EMAIL [--json]',
    options: {},
    positionals: 1,
    async run(ctx) {
      const user = await setUserDisabled(ctx.db, emailArg(ctx), false);
      ctx.print({ email: user.email, disabled: false }, `enabled ${user.email}`);
    },
  },
  unlink: {
    summary: 'remove the link between a person and their account at an upstream identity provider',
    usage: 'EMAIL --idp ID [--json]',
    options: { idp: { type: 'string' } },
    positionals: 1,
    changes: true,
    async run(ctx) {
      const user = await requireUserByEmail(ctx.db, emailArg(ctx));
      const idp = ctx.values.idp;
      if (typeof idp !== 'string' || !idp) throw new UsageError('--idp ID is required');
      if (!(await unlinkAccount(ctx.db, user.id, idp))) throw new DomainError('not_found', `${user.email} has no link to ${idp}`);
      ctx.print({ email: user.email, unlinked: idp }, `${user.email} is no longer linked to ${idp}`);
    },
  },
  'sign-out': {
    summary: 'end every session of a person, revoke every grant and token issued to them, and tell apps with back-channel logout',
    changes: true,
    usage: 'EMAIL [--json]',
    options: {},
    positionals: 1,
    async run(ctx) {
      const user = await requireUserByEmail(ctx.db, emailArg(ctx));
      const sessions = await sessionsOfAccount(ctx.db, user.id);
      // Built first: if it cannot be, nothing is revoked, and a second run still finds the
      // sessions whose apps must be told.
      const provider = sessions.length ? await adminProvider(ctx) : undefined;
      const revoked = await revokeEverythingOfAccount(ctx.db, user.id);
      // Apps are told once the sessions are gone, so one that checks back finds them ended.
      const notified = provider ? await notifySessionsEnded(provider, sessions) : [];
      ctx.print({ email: user.email, revoked, notified }, [
        `signed out ${user.email}: ${revoked} session(s), grant(s) and token(s) revoked`,
        ...notified.map((n) => (n.error ? `app ${n.clientId} was not told: ${n.error}` : `app ${n.clientId} told by back-channel logout`)),
      ]);
    },
  },
  'set-password': {
    summary: 'set a new password; asked for, or read from stdin with --password-stdin',
    changes: true,
    usage: 'EMAIL [--password-stdin] [--json]',
    options: { 'password-stdin': { type: 'boolean' } },
    positionals: 1,
    async run(ctx) {
      const email = emailArg(ctx);
      // Fail on an unknown email before asking for a password nobody can use.
      await requireUserByEmail(ctx.db, email);
      const password = await readNewPassword(ctx.io, ctx.values['password-stdin'] === true);
      const user = await setUserPassword(ctx.db, createPasswordHasher(ctx.config.argon2), email, password);
      ctx.print({ email: user.email, passwordChanged: true }, `password changed for ${user.email}`);
    },
  },
};
