import type { CommandGroup } from './cli.ts';
import { UsageError } from './io.ts';
import { addApiScope, createApi, deleteApi, listApis, removeApiScope, requireApi, type Api } from '../apis/apis.ts';
import { grantsOfApi } from '../rbac/permissions.ts';

function describeApi(api: Api): string[] {
  return [
    `identifier:        ${api.identifier}`,
    `name:              ${api.name}`,
    `access token TTL:  ${api.accessTokenTtl === null ? 'default' : `${api.accessTokenTtl}s`}`,
    `token signing alg: ${api.tokenSigningAlg}`,
    `scopes:            ${api.scopes.map((s) => s.name).join(' ') || '-'}`,
    `created:           ${api.createdAt}`,
  ];
}

function readTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new UsageError('--access-token-ttl must be a whole number of seconds');
  return Number(value);
}

function requiredScope(values: Record<string, unknown>): string {
  if (typeof values.scope !== 'string' || !values.scope) throw new UsageError('--scope SCOPE is required');
  return values.scope;
}

export const apiCommands: CommandGroup = {
  create: {
    summary: 'register an API (resource server) that access tokens can be issued for',
    changes: true,
    usage: '--identifier URL --name NAME [--scope SCOPE …] [--access-token-ttl SECONDS] [--token-signing-alg RS256|ES256|EdDSA] [--json]',
    options: {
      identifier: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      'access-token-ttl': { type: 'string' },
      'token-signing-alg': { type: 'string' },
    },
    async run({ db, values, print }) {
      const api = await createApi(db, {
        identifier: (values.identifier as string | undefined) ?? '',
        name: (values.name as string | undefined) ?? '',
        scopes: values.scope as string[] | undefined,
        accessTokenTtl: readTtl(values['access-token-ttl']),
        tokenSigningAlg: values['token-signing-alg'] as string | undefined,
      });
      print(api, describeApi(api));
    },
  },
  list: {
    summary: 'list APIs',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const apis = await listApis(db);
      print(apis, apis.length ? apis.map((a) => `${a.identifier}  ${a.name}  ${a.scopes.map((s) => s.name).join(' ')}`.trimEnd()) : 'no APIs');
    },
  },
  show: {
    summary: 'show one API, its scopes, and which roles grant each',
    usage: 'IDENTIFIER [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      const api = await requireApi(db, positionals[0]!);
      const grants = await grantsOfApi(db, api.identifier);
      const scopes = api.scopes.map((s) => ({ ...s, roles: grants.filter((g) => g.scope === s.name).map((g) => g.role) }));
      print({ ...api, scopes }, [
        ...describeApi(api),
        ...scopes.map((s) => `  ${s.name}${s.description ? ` (${s.description})` : ''}: granted by ${s.roles.join(', ') || 'no role'}`),
      ]);
    },
  },
  delete: {
    summary: 'delete an API; no new tokens are issued for it',
    changes: true,
    usage: 'IDENTIFIER [--json]',
    options: {},
    positionals: 1,
    async run({ db, positionals, print }) {
      await deleteApi(db, positionals[0]!);
      print({ deleted: positionals[0] }, `deleted API ${positionals[0]}`);
    },
  },
  'add-scope': {
    summary: 'add a scope (permission) to an API',
    changes: true,
    usage: 'IDENTIFIER --scope SCOPE [--description TEXT] [--json]',
    options: { scope: { type: 'string' }, description: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const api = await addApiScope(db, positionals[0]!, requiredScope(values), values.description as string | undefined);
      print(api, describeApi(api));
    },
  },
  'remove-scope': {
    summary: 'remove a scope from an API',
    changes: true,
    usage: 'IDENTIFIER --scope SCOPE [--json]',
    options: { scope: { type: 'string' } },
    positionals: 1,
    async run({ db, positionals, values, print }) {
      const api = await removeApiScope(db, positionals[0]!, requiredScope(values));
      print(api, describeApi(api));
    },
  },
};
