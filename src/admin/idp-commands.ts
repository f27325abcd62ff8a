import type { CommandGroup } from './cli.ts';
import { readAllStdin, UsageError } from './io.ts';
import {
  createIdentityProvider,
  deleteIdentityProvider,
  listIdentityProviders,
  parseRoleMap,
  requireIdentityProvider,
  setIdentityProviderDisabled,
  type IdentityProvider,
} from '../federation/providers.ts';
import { CALLBACK_PATH } from '../federation/routes.ts';

function describeProvider(p: IdentityProvider, redirectUri: string): string[] {
  return [
    `id:             ${p.id}`,
    `name:           ${p.name}`,
    `issuer:         ${p.issuer}`,
    `client_id:      ${p.clientId}`,
    `scope:          ${p.scope}`,
    `button:         ${p.buttonLabel}`,
    `sign-up:        ${p.allowSignup ? 'allowed' : 'no (existing users only)'}`,
    `link by email:  ${p.linkByVerifiedEmail ? 'when the upstream says the email is verified' : 'no (password sign-in once to link)'}`,
    `roles:          ${p.roleClaim ? `${p.roleClaim}: ${Object.entries(p.roleMap).map(([v, r]) => `${v}=${r}`).join(', ')}` : '-'}`,
    `status:         ${p.disabled ? 'disabled' : 'enabled'}`,
    `redirect URI:   ${redirectUri}   (register this at the provider)`,
  ];
}

export const idpCommands: CommandGroup = {
  create: {
    summary: 'add an upstream OpenID Connect provider people can sign in with; prints the redirect URI to register there',
    usage:
      '--id SLUG --name NAME --issuer URL --client-id ID [--client-secret-stdin | --client-secret SECRET] [--scope "openid email profile"] ' +
      '[--button-label TEXT] [--allow-signup] [--link-by-verified-email] [--no-profile-refresh] [--map-claim CLAIM --role-map VALUE=ROLE …] [--json]',
    options: {
      id: { type: 'string' },
      name: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' },
      scope: { type: 'string' },
      'button-label': { type: 'string' },
      'allow-signup': { type: 'boolean' },
      'link-by-verified-email': { type: 'boolean' },
      'no-profile-refresh': { type: 'boolean' },
      'map-claim': { type: 'string' },
      'role-map': { type: 'string', multiple: true },
    },
    changes: true,
    async run({ db, config, io, values, print, secretBox }) {
      if (values['client-secret'] !== undefined && values['client-secret-stdin']) throw new UsageError('give the client secret once: --client-secret or --client-secret-stdin');
      const secret = values['client-secret-stdin'] ? await readAllStdin(io) : (values['client-secret'] as string | undefined);
      const provider = await createIdentityProvider(db, secretBox(), {
        id: (values.id as string | undefined) ?? '',
        name: (values.name as string | undefined) ?? '',
        issuer: (values.issuer as string | undefined) ?? '',
        clientId: (values['client-id'] as string | undefined) ?? '',
        clientSecret: secret || undefined,
        scope: values.scope as string | undefined,
        buttonLabel: values['button-label'] as string | undefined,
        allowSignup: values['allow-signup'] === true,
        linkByVerifiedEmail: values['link-by-verified-email'] === true,
        refreshProfile: values['no-profile-refresh'] !== true,
        roleClaim: values['map-claim'] as string | undefined,
        roleMap: parseRoleMap((values['role-map'] as string[] | undefined) ?? []),
      });
      const redirectUri = `${config.issuer}${CALLBACK_PATH}`;
      print({ ...provider, redirectUri }, describeProvider(provider, redirectUri));
    },
  },
  list: {
    summary: 'list upstream identity providers',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const providers = await listIdentityProviders(db);
      print(providers, providers.length ? providers.map((p) => `${p.id}  ${p.disabled ? 'disabled' : 'enabled '}  ${p.name}  ${p.issuer}`) : 'no identity providers');
    },
  },
  show: {
    summary: 'show one upstream identity provider and the redirect URI to register there',
    usage: 'ID [--json]',
    options: {},
    positionals: 1,
    async run({ db, config, positionals, print }) {
      const provider = await requireIdentityProvider(db, positionals[0]!);
      const redirectUri = `${config.issuer}${CALLBACK_PATH}`;
      print({ ...provider, redirectUri }, describeProvider(provider, redirectUri));
    },
  },
  disable: {
    summary: "hide a provider's button and refuse sign-ins through it",
    usage: 'ID [--json]',
    options: {},
    positionals: 1,
    changes: true,
    async run({ db, positionals, print }) {
      const provider = await setIdentityProviderDisabled(db, positionals[0]!, true);
      print(provider, `disabled ${provider.id}`);
    },
  },
  enable: {
    summary: 'show a disabled provider again',
    usage: 'ID [--json]',
    options: {},
    positionals: 1,
    changes: true,
    async run({ db, positionals, print }) {
      const provider = await setIdentityProviderDisabled(db, positionals[0]!, false);
      print(provider, `enabled ${provider.id}`);
    },
  },
  delete: {
    summary: 'remove a provider and every account link to it',
    usage: 'ID [--json]',
    options: {},
    positionals: 1,
    changes: true,
    async run({ db, positionals, print }) {
      await deleteIdentityProvider(db, positionals[0]!);
      print({ deleted: positionals[0] }, `deleted identity provider ${positionals[0]}`);
    },
  },
};
