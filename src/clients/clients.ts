import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { ClientTable, Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { defaultClientScope, supportedScopes } from '../oidc/scopes.ts';
import { allApiScopeNames, sharedApiScopeNames } from '../apis/apis.ts';
import { digestClientSecret, generateClientSecret } from './client-secrets.ts';
import { checkPublicJwks, type PublicJwks } from './client-keys.ts';
import type { SecretBox } from '../keys/secret-box.ts';
import { canMatchStored } from '../db/text.ts';
import { reusableQuery } from '../db/reusable-query.ts';
import { SIGNING_ALGS } from '../keys/keys.ts';

export type ClientRow = Selectable<ClientTable>;

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT] as const;
// Short names accepted on the command line for the long registered ones.
const grantAliases: Record<string, string> = { device_code: DEVICE_CODE_GRANT };
export type GrantType = (typeof grantTypes)[number];

export const authMethods = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'] as const;

export interface Client {
  clientId: string;
  name: string;
  public: boolean;
  /** Only the client_credentials grant: a service calling APIs, with no user. */
  service: boolean;
  tokenEndpointAuthMethod: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  scope: string;
  backchannelLogoutUri: string | null;
  jwks: PublicJwks | null;
  jwksUri: string | null;
  idTokenSigningAlg: string;
  logoUri: string | null;
  policyUri: string | null;
  tosUri: string | null;
  createdAt: string;
}

export interface NewClient {
  name: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  public?: boolean;
  service?: boolean;
  authMethod?: string;
  scope?: string;
  backchannelLogoutUri?: string;
  /** A JWKS document (JSON text) with the client's public keys, for private_key_jwt. */
  jwks?: string;
  jwksUri?: string;
  /** RS256 (the default), ES256 or EdDSA. */
  idTokenSigningAlg?: string;
}

/** A service uses only the client_credentials grant: it calls APIs for itself, with no user. */
export function isServiceGrantSet(grants: readonly string[] | undefined): boolean {
  return grants?.length === 1 && grants[0] === 'client_credentials';
}

export function toClient(row: ClientRow): Client {
  const grants = JSON.parse(row.grant_types) as GrantType[];
  return {
    clientId: row.client_id,
    name: row.name,
    public: row.token_endpoint_auth_method === 'none',
    service: isServiceGrantSet(grants),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method,
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    postLogoutRedirectUris: JSON.parse(row.post_logout_redirect_uris) as string[],
    grantTypes: grants,
    scope: row.scope,
    backchannelLogoutUri: row.backchannel_logout_uri,
    jwks: row.jwks ? (JSON.parse(row.jwks) as PublicJwks) : null,
    jwksUri: row.jwks_uri,
    idTokenSigningAlg: row.id_token_signed_response_alg ?? 'RS256',
    logoUri: row.logo_uri,
    policyUri: row.policy_uri,
    tosUri: row.tos_uri,
    createdAt: row.created_at,
  };
}

function checkUri(uri: string, option: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new DomainError('invalid_input', `${option} must be an absolute URL, got ${JSON.stringify(uri)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DomainError('invalid_input', `${option} must use https, got ${JSON.stringify(uri)}`);
  }
  // Codes, logout tokens and (for --jwks-uri) the keys that authenticate a client would cross
  // the network in clear; plain http stays possible on the machine itself, for development
  // and for native apps' loopback redirects (RFC 8252 §7.3).
  if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    throw new DomainError('invalid_input', `${option} must use https (plain http only on loopback), got ${JSON.stringify(uri)}`);
  }
  // RFC 6749 §3.1.2: the redirection endpoint URI must not include a fragment.
  if (uri.includes('#')) throw new DomainError('invalid_input', `${option} must not contain a fragment: ${uri}`);
  if (url.username || url.password) throw new DomainError('invalid_input', `${option} must not contain credentials`);
  if (uri.length > 2000) throw new DomainError('invalid_input', `${option} is longer than 2000 characters`);
  return uri;
}

type CheckedClient = Omit<ClientRow, 'client_id' | 'secret_digest' | 'secret_sealed' | 'created_at' | 'updated_at' | 'logo_uri' | 'policy_uri' | 'tos_uri'>;

function resolveAuthMethod(input: NewClient, hasKeys: boolean): string {
  if (input.public && input.authMethod && input.authMethod !== 'none') {
    throw new DomainError('invalid_input', '--public clients authenticate with no secret; drop --auth-method');
  }
  const method = input.public ? 'none' : (input.authMethod ?? (hasKeys ? 'private_key_jwt' : 'client_secret_basic'));
  if (!(authMethods as readonly string[]).includes(method)) {
    throw new DomainError('invalid_input', `unknown --auth-method ${JSON.stringify(method)} (one of ${authMethods.join(', ')})`);
  }
  if (method === 'private_key_jwt' && !hasKeys) {
    throw new DomainError('invalid_input', 'private_key_jwt needs the client\'s public keys: --jwks-file or --jwks-uri');
  }
  if (method !== 'private_key_jwt' && hasKeys) {
    throw new DomainError('invalid_input', '--jwks-file and --jwks-uri are for --auth-method private_key_jwt');
  }
  return method;
}

async function checkNewClient(db: Kysely<Database>, input: NewClient): Promise<CheckedClient> {
  const name = input.name?.trim();
  if (!name) throw new DomainError('invalid_input', '--name is required');
  if (name.length > 200) throw new DomainError('invalid_input', 'name must be at most 200 characters');

  const defaultGrants = input.service ? ['client_credentials'] : ['authorization_code', 'refresh_token'];
  const grants = [...new Set((input.grantTypes?.length ? input.grantTypes : defaultGrants).map((g) => grantAliases[g] ?? g))];
  for (const g of grants) {
    if (!(grantTypes as readonly string[]).includes(g)) {
      throw new DomainError('invalid_input', `unknown grant type ${JSON.stringify(g)} (one of authorization_code, refresh_token, client_credentials, device_code)`);
    }
  }
  if (input.service && grants.some((g) => g !== 'client_credentials')) {
    throw new DomainError('invalid_input', 'a --service client uses only the client_credentials grant');
  }
  if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.includes(DEVICE_CODE_GRANT)) {
    throw new DomainError('invalid_input', 'refresh_token needs the authorization_code or device_code grant type');
  }

  const redirectUris = [...new Set((input.redirectUris ?? []).map((u) => checkUri(u, '--redirect-uri')))];
  if (grants.includes('authorization_code') && redirectUris.length === 0) {
    throw new DomainError('invalid_input', 'at least one --redirect-uri is required for the authorization_code grant');
  }
  if (!grants.includes('authorization_code') && redirectUris.length > 0) {
    throw new DomainError('invalid_input', '--redirect-uri is only for clients with the authorization_code grant');
  }
  const postLogout = [
    ...new Set((input.postLogoutRedirectUris ?? []).map((u) => checkUri(u, '--post-logout-redirect-uri'))),
  ];
  const backchannel = input.backchannelLogoutUri === undefined ? null : checkUri(input.backchannelLogoutUri, '--backchannel-logout-uri');

  if (input.jwks !== undefined && input.jwksUri !== undefined) {
    throw new DomainError('invalid_input', 'give either --jwks-file or --jwks-uri, not both');
  }
  const jwks = input.jwks === undefined ? null : JSON.stringify(checkPublicJwks(input.jwks));
  const jwksUri = input.jwksUri === undefined ? null : checkUri(input.jwksUri, '--jwks-uri');
  const method = resolveAuthMethod(input, jwks !== null || jwksUri !== null);
  // Tokens on a client's own behalf go to whoever proves to be that client; without a secret
  // or a key, anyone who knows its id (which is not a secret) could ask.
  if (method === 'none' && grants.includes('client_credentials')) {
    throw new DomainError('invalid_input', 'a public client (--public or --auth-method none) cannot use client_credentials: it proves nothing');
  }

  // Services are given API scopes only; apps may also ask for any OpenID Connect scope.
  const scopeWords = (input.scope ?? (input.service ? '' : defaultClientScope)).split(/\s+/).filter(Boolean);
  const apiScopes = await allApiScopeNames(db);
  const shared = input.service ? await sharedApiScopeNames(db) : new Set<string>();
  for (const s of scopeWords) {
    if (!(supportedScopes as readonly string[]).includes(s) && !apiScopes.has(s)) {
      throw new DomainError('invalid_input', `unknown scope ${JSON.stringify(s)} (OpenID Connect scopes: ${supportedScopes.join(', ')}; or a scope of a registered API)`);
    }
    if (shared.has(s)) {
      throw new DomainError('invalid_input', `scope ${JSON.stringify(s)} belongs to more than one API; give it to the service through a role (role grant, then role assign ROLE --client ID)`);
    }
  }

  const idTokenAlg = input.idTokenSigningAlg ?? 'RS256';
  if (!(SIGNING_ALGS as readonly string[]).includes(idTokenAlg)) {
    throw new DomainError('invalid_input', `--id-token-signing-alg must be one of ${SIGNING_ALGS.join(', ')}`);
  }

  return {
    name,
    id_token_signed_response_alg: idTokenAlg === 'RS256' ? null : idTokenAlg,
    token_endpoint_auth_method: method,
    redirect_uris: JSON.stringify(redirectUris),
    post_logout_redirect_uris: JSON.stringify(postLogout),
    grant_types: JSON.stringify(grants),
    scope: [...new Set(scopeWords)].join(' '),
    backchannel_logout_uri: backchannel,
    jwks,
    jwks_uri: jwksUri,
  };
}

export interface CreatedClient {
  client: Client;
  /** The plain secret, returned once; only its digest is stored. */
  clientSecret: string | null;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * 22 letters and digits (about 131 bits). Letters and digits only: an id that began with "-"
 * would read as an option on the admin script's command line.
 */
function newClientId(): string {
  return Array.from({ length: 22 }, () => ID_ALPHABET[crypto.randomInt(ID_ALPHABET.length)]).join('');
}

/**
 * What is stored for a new secret: always its digest; for client_secret_jwt also the secret
 * itself, sealed, because checking an HMAC needs the key.
 */
function storedSecret(method: string, clientId: string, secret: string, box: SecretBox) {
  return {
    secret_digest: digestClientSecret(secret),
    secret_sealed: method === 'client_secret_jwt' ? box.seal(secret, `client-secret:${clientId}`) : null,
  };
}

export async function createClient(db: Kysely<Database>, input: NewClient, box: SecretBox): Promise<CreatedClient> {
  const fields = await checkNewClient(db, input);
  const method = fields.token_endpoint_auth_method;
  const secret = method.startsWith('client_secret_') ? generateClientSecret() : null;
  const clientId = newClientId();
  const now = new Date().toISOString();
  const row: ClientRow = {
    ...fields,
    client_id: clientId,
    ...(secret ? storedSecret(method, clientId, secret, box) : { secret_digest: null, secret_sealed: null }),
    logo_uri: null,
    policy_uri: null,
    tos_uri: null,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('clients').values(row).execute();
  return { client: toClient(row), clientSecret: secret };
}

// The login and consent pages read the app they show.
const clientRowById = reusableQuery((db) => db.selectFrom('clients').selectAll().where('client_id', '=', ''));

export async function findClientRow(db: Kysely<Database>, clientId: string): Promise<ClientRow | undefined> {
  if (!canMatchStored(clientId)) return undefined;
  const [row] = await clientRowById(db, [clientId]);
  return row;
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

export async function rotateClientSecret(db: Kysely<Database>, clientId: string, box: SecretBox): Promise<string> {
  const client = await requireClient(db, clientId);
  if (!client.tokenEndpointAuthMethod.startsWith('client_secret_')) {
    throw new DomainError('invalid_input', `client ${clientId} has no secret (it authenticates with ${client.tokenEndpointAuthMethod})`);
  }
  const secret = generateClientSecret();
  await db
    .updateTable('clients')
    .set({ ...storedSecret(client.tokenEndpointAuthMethod, clientId, secret, box), updated_at: new Date().toISOString() })
    .where('client_id', '=', clientId)
    .execute();
  return secret;
}

export interface ClientUpdate {
  name?: string;
  /** An https URL or a small data:image; an empty string removes it. */
  logoUri?: string;
  policyUri?: string;
  tosUri?: string;
}

function checkLogo(value: string): string | null {
  if (value === '') return null;
  if (/^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/.test(value)) {
    if (value.length > 16_384) throw new DomainError('invalid_input', '--logo-uri: a data: image must be under 16 KiB; host a larger logo on https');
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DomainError('invalid_input', '--logo-uri must be an https URL or a data:image/… URL');
  }
  // The logo is shown on the login page: never a script-capable or cleartext scheme.
  if (url.protocol !== 'https:') throw new DomainError('invalid_input', '--logo-uri must be an https URL or a data:image/… URL');
  return url.href;
}

function checkLink(value: string, option: string): string | null {
  if (value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DomainError('invalid_input', `${option} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DomainError('invalid_input', `${option} must be an absolute http(s) URL`);
  return url.href;
}

/** Changes what the pages show of an app: its name, logo, and privacy and terms links. */
export async function updateClient(db: Kysely<Database>, clientId: string, update: ClientUpdate): Promise<Client> {
  await requireClient(db, clientId);
  const set: Partial<ClientRow> = {};
  if (update.name !== undefined) {
    const name = update.name.trim();
    if (!name || name.length > 200) throw new DomainError('invalid_input', '--name must be 1 to 200 characters');
    set.name = name;
  }
  if (update.logoUri !== undefined) set.logo_uri = checkLogo(update.logoUri);
  if (update.policyUri !== undefined) set.policy_uri = checkLink(update.policyUri, '--policy-uri');
  if (update.tosUri !== undefined) set.tos_uri = checkLink(update.tosUri, '--tos-uri');
  if (Object.keys(set).length === 0) throw new DomainError('invalid_input', 'nothing to update: give --name, --logo-uri, --policy-uri or --tos-uri');
  await db.updateTable('clients').set({ ...set, updated_at: new Date().toISOString() }).where('client_id', '=', clientId).execute();
  return requireClient(db, clientId);
}
