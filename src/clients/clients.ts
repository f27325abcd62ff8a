import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { ClientTable, Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { defaultClientScope, supportedScopes } from '../oidc/scopes.ts';
import { digestClientSecret, generateClientSecret } from './client-secrets.ts';

export type ClientRow = Selectable<ClientTable>;

export const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof grantTypes)[number];

export interface Client {
  clientId: string;
  name: string;
  public: boolean;
  tokenEndpointAuthMethod: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  scope: string;
  createdAt: string;
}

export interface NewClient {
  name: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  public?: boolean;
  scope?: string;
}

export function toClient(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    name: row.name,
    public: row.token_endpoint_auth_method === 'none',
    tokenEndpointAuthMethod: row.token_endpoint_auth_method,
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    postLogoutRedirectUris: JSON.parse(row.post_logout_redirect_uris) as string[],
    grantTypes: JSON.parse(row.grant_types) as GrantType[],
    scope: row.scope,
    createdAt: row.created_at,
  };
}

function checkRedirectUri(uri: string, option: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new DomainError('invalid_input', `${option} must be an absolute URL, got ${JSON.stringify(uri)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DomainError('invalid_input', `${option} must use https or http, got ${JSON.stringify(uri)}`);
  }
  // RFC 6749 §3.1.2: the redirection endpoint URI must not include a fragment.
  if (uri.includes('#')) throw new DomainError('invalid_input', `${option} must not contain a fragment: ${uri}`);
  if (url.username || url.password) throw new DomainError('invalid_input', `${option} must not contain credentials`);
  if (uri.length > 2000) throw new DomainError('invalid_input', `${option} is longer than 2000 characters`);
  return uri;
}

function checkNewClient(input: NewClient): Omit<ClientRow, 'client_id' | 'secret_digest' | 'created_at' | 'updated_at'> {
  const name = input.name?.trim();
  if (!name) throw new DomainError('invalid_input', '--name is required');
  if (name.length > 200) throw new DomainError('invalid_input', 'name must be at most 200 characters');

  const grants = [...new Set(input.grantTypes?.length ? input.grantTypes : ['authorization_code', 'refresh_token'])];
  for (const g of grants) {
    if (!(grantTypes as readonly string[]).includes(g)) {
      throw new DomainError('invalid_input', `unknown grant type ${JSON.stringify(g)} (one of ${grantTypes.join(', ')})`);
    }
  }
  if (grants.includes('refresh_token') && !grants.includes('authorization_code')) {
    throw new DomainError('invalid_input', 'refresh_token needs the authorization_code grant type');
  }
  if (input.public && grants.includes('client_credentials')) {
    throw new DomainError('invalid_input', 'a public client cannot use client_credentials: it has no secret');
  }

  const redirectUris = [...new Set((input.redirectUris ?? []).map((u) => checkRedirectUri(u, '--redirect-uri')))];
  if (grants.includes('authorization_code') && redirectUris.length === 0) {
    throw new DomainError('invalid_input', 'at least one --redirect-uri is required for the authorization_code grant');
  }
  const postLogout = [
    ...new Set((input.postLogoutRedirectUris ?? []).map((u) => checkRedirectUri(u, '--post-logout-redirect-uri'))),
  ];

  const scopeWords = (input.scope ?? defaultClientScope).split(/\s+/).filter(Boolean);
  for (const s of scopeWords) {
    if (!(supportedScopes as readonly string[]).includes(s)) {
      throw new DomainError('invalid_input', `unknown scope ${JSON.stringify(s)} (one of ${supportedScopes.join(', ')})`);
    }
  }

  return {
    name,
    token_endpoint_auth_method: input.public ? 'none' : 'client_secret_basic',
    redirect_uris: JSON.stringify(redirectUris),
    post_logout_redirect_uris: JSON.stringify(postLogout),
    grant_types: JSON.stringify(grants),
    scope: [...new Set(scopeWords)].join(' '),
  };
}

export interface CreatedClient {
  client: Client;
  /** The plain secret, returned once; only its digest is stored. */
  clientSecret: string | null;
}

export async function createClient(db: Kysely<Database>, input: NewClient): Promise<CreatedClient> {
  const fields = checkNewClient(input);
  const secret = input.public ? null : generateClientSecret();
  const now = new Date().toISOString();
  const row: ClientRow = {
    ...fields,
    client_id: crypto.randomBytes(16).toString('base64url'),
    secret_digest: secret ? digestClientSecret(secret) : null,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('clients').values(row).execute();
  return { client: toClient(row), clientSecret: secret };
}

export async function findClientRow(db: Kysely<Database>, clientId: string): Promise<ClientRow | undefined> {
  return db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
}

export async function requireClient(db: Kysely<Database>, clientId: string): Promise<Client> {
  const row = await findClientRow(db, clientId);
  if (!row) throw new DomainError('not_found', `no client with id ${clientId}`);
  return toClient(row);
}

export async function listClients(db: Kysely<Database>): Promise<Client[]> {
  const rows = await db.selectFrom('clients').selectAll().orderBy('created_at').orderBy('client_id').execute();
  return rows.map(toClient);
}

export async function deleteClient(db: Kysely<Database>, clientId: string): Promise<void> {
  await requireClient(db, clientId);
  await db.deleteFrom('clients').where('client_id', '=', clientId).execute();
}

export async function rotateClientSecret(db: Kysely<Database>, clientId: string): Promise<string> {
  const client = await requireClient(db, clientId);
  if (client.public) throw new DomainError('invalid_input', `client ${clientId} is public and has no secret`);
  const secret = generateClientSecret();
  await db
    .updateTable('clients')
    .set({ secret_digest: digestClientSecret(secret), updated_at: new Date().toISOString() })
    .where('client_id', '=', clientId)
    .execute();
  return secret;
}
