import type { CommandGroup } from './cli.ts';
import { readFileArgument } from './io.ts';
import { describePermissions } from './user-commands.ts';
import { roleNamesOfClient } from '../rbac/roles.ts';
import { permissionsOfClient } from '../rbac/permissions.ts';
import { createClient, deleteClient, listClients, requireClient, rotateClientSecret, updateClient, type Client } from '../clients/clients.ts';

function describeClient(client: Client): string[] {
  return [
    `client_id:      ${client.clientId}`,
    `name:           ${client.name}`,
    `type:           ${client.public ? 'public (PKCE, no secret)' : `${client.service ? 'service' : 'confidential'} (${client.tokenEndpointAuthMethod})`}`,
    `grant types:    ${client.grantTypes.join(', ')}`,
    `scope:          ${client.scope}`,
    `redirect URIs:  ${client.redirectUris.join(', ') || '-'}`,
    `post-logout:    ${client.postLogoutRedirectUris.join(', ') || '-'}`,
    ...(client.backchannelLogoutUri ? [`back-channel:   ${client.backchannelLogoutUri}`] : []),
    ...(client.jwksUri ? [`jwks_uri:       ${client.jwksUri}`] : []),
    ...(client.jwks ? [`jwks:           ${client.jwks.keys.length} key(s)`] : []),
    `ID token alg:   ${client.idTokenSigningAlg}`,
    ...(client.logoUri ? [`logo:           ${client.logoUri.startsWith('data:') ? 'inline image' : client.logoUri}`] : []),
    ...(client.policyUri ? [`privacy policy: ${client.policyUri}`] : []),
    ...(client.tosUri ? [`terms:          ${client.tosUri}`] : []),
    `created:        ${client.createdAt}`,
  ];
}

export const clientCommands: CommandGroup = {
  create: {
    summary: 'register an application; prints its client id and, once, its secret',
    changes: true,
    usage:
      '--name NAME --redirect-uri URI [--redirect-uri URI …] [--post-logout-redirect-uri URI …] ' +
      '[--grant-type authorization_code|refresh_token|client_credentials|device_code …] [--public | --service] [--scope "…"] ' +
      '[--auth-method client_secret_basic|client_secret_post|client_secret_jwt|private_key_jwt] [--jwks-file FILE | --jwks-uri URL] ' +
      '[--backchannel-logout-uri URL] [--id-token-signing-alg RS256|ES256|EdDSA] [--json]',
    options: {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'grant-type': { type: 'string', multiple: true },
      public: { type: 'boolean' },
      service: { type: 'boolean' },
      scope: { type: 'string' },
      'auth-method': { type: 'string' },
      'jwks-file': { type: 'string' },
      'jwks-uri': { type: 'string' },
      'backchannel-logout-uri': { type: 'string' },
      'id-token-signing-alg': { type: 'string' },
    },
    async run({ db, values, print, secretBox }) {
      const jwksFile = values['jwks-file'] as string | undefined;
      const { client, clientSecret } = await createClient(db, {
        name: (values.name as string | undefined) ?? '',
        redirectUris: values['redirect-uri'] as string[] | undefined,
        postLogoutRedirectUris: values['post-logout-redirect-uri'] as string[] | undefined,
        grantTypes: values['grant-type'] as string[] | undefined,
        public: values.public === true,
        service: values.service === true,
        scope: values.scope as string | undefined,
        authMethod: values['auth-method'] as string | undefined,
        jwks: jwksFile === undefined ? undefined : readFileArgument('--jwks-file', jwksFile),
        jwksUri: values['jwks-uri'] as string | undefined,
        backchannelLogoutUri: values['backchannel-logout-uri'] as string | undefined,
        idTokenSigningAlg: values['id-token-signing-alg'] as string | undefined,
      }, secretBox());
      const human = describeClient(client);
      if (clientSecret) {
        human.push(`client_secret:  ${clientSecret}`, '', 'Store the secret now: it is not shown again (rotate it with client rotate-secret).');
      }
      print({ ...client, clientSecret }, human);
    },
  },
  update: {
    summary: 'change what the sign-in pages show of an application: name, logo, privacy and terms links',
    usage: 'CLIENT_ID [--name NAME] [--logo-uri URL] [--policy-uri URL] [--tos-uri URL] [--json]   (an empty value removes a link)',
    options: { name: { type: 'string' }, 'logo-uri': { type: 'string' }, 'policy-uri': { type: 'string' }, 'tos-uri': { type: 'string' } },
    positionals: 1,
    changes: true,
    async run({ db, positionals, values, print }) {
      const client = await updateClient(db, positionals[0]!, {
        name: values.name as string | undefined,
        logoUri: values['logo-uri'] as string | undefined,
        policyUri: values['policy-uri'] as string | undefined,
        tosUri: values['tos-uri'] as string | undefined,
      });
      print(client, describeClient(client));
    },
  },
  list: {
    summary: 'list registered applications',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const clients = await listClients(db);
      print(
        clients,
        clients.length
          ? clients.map((c) => `${c.clientId}  ${c.public ? 'public      ' : 'confidential'}  ${c.name}`)
          : 'no clients',
      );
    },
  },
  show: {
    summary: 'show one application, and for a service its roles and permissions',
    usage: 'CLIENT_ID [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      const client = await requireClient(db, positionals[0]!);
      const roles = await roleNamesOfClient(db, client.clientId);
      const permissions = await permissionsOfClient(db, client.clientId);
      print({ ...client, roles, permissions }, [...describeClient(client), `roles:          ${roles.join(', ') || '-'}`, ...describePermissions(permissions)]);
    },
  },
  delete: {
    summary: 'delete an application; its tokens stop working',
    changes: true,
    usage: 'CLIENT_ID [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      await deleteClient(db, positionals[0]!);
      print({ deleted: positionals[0] }, `deleted client ${positionals[0]}`);
    },
  },
  'rotate-secret': {
    summary: 'replace a confidential client\'s secret; prints the new one once',
    changes: true,
    usage: 'CLIENT_ID [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print, secretBox }) {
      const clientSecret = await rotateClientSecret(db, positionals[0]!, secretBox());
      print({ clientId: positionals[0], clientSecret }, [
        `client_secret:  ${clientSecret}`,
        '',
        'The old secret no longer works. Store the new one now: it is not shown again.',
      ]);
    },
  },
};
