/**
 * Every table Latchkey stores, typed once. Booleans are 0/1 integers and lists are JSON text
 * so that one set of migrations serves both SQLite and PostgreSQL.
 */
export interface Database {
  oidc_payloads: OidcPayloadTable;
  users: UserTable;
  roles: RoleTable;
  user_roles: UserRoleTable;
  clients: ClientTable;
  keys: KeyTable;
  apis: ApiTable;
  api_scopes: ApiScopeTable;
  role_permissions: RolePermissionTable;
  client_roles: ClientRoleTable;
  sign_in_throttles: SignInThrottleTable;
  audit_events: AuditEventTable;
  identity_providers: IdentityProviderTable;
  user_links: UserLinkTable;
  federation_flows: FederationFlowTable;
  registry_version: RegistryVersionTable;
}

/** What oidc-provider persists (sessions, grants, codes, tokens, interactions, …) keyed by model and id. */
export interface OidcPayloadTable {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  /** The user a session, grant, code or token belongs to, so that all of them can be revoked at once. */
  account_id: string | null;
  uid: string | null;
  user_code: string | null;
  /** Seconds since the epoch; null never expires. */
  expires_at: number | null;
  consumed_at: number | null;
}

export interface UserTable {
  id: string;
  email: string;
  name: string | null;
  password_hash: string | null;
  email_verified: number;
  disabled: number;
  picture: string | null;
  created_at: string;
  updated_at: string;
}

export interface RoleTable {
  id: string;
  name: string;
  description: string | null;
  created_at: string;
}

export interface UserRoleTable {
  user_id: string;
  role_id: string;
  created_at: string;
}

export interface ClientTable {
  client_id: string;
  name: string;
  /** SHA-256 of the secret (base64url); null for clients without a secret. */
  secret_digest: string | null;
  /** For client_secret_jwt only: the secret sealed under the key-encryption key. */
  secret_sealed: string | null;
  token_endpoint_auth_method: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  scope: string;
  backchannel_logout_uri: string | null;
  /** The client's public keys for private_key_jwt, as a JWKS JSON document. */
  jwks: string | null;
  jwks_uri: string | null;
  /** RS256 when null. */
  id_token_signed_response_alg: string | null;
  logo_uri: string | null;
  policy_uri: string | null;
  tos_uri: string | null;
  created_at: string;
  updated_at: string;
}

export interface KeyTable {
  kid: string;
  /** 'sig' for a JWS signing key, 'cookie' for a cookie-signing secret. */
  use: string;
  alg: string | null;
  material: string;
  created_at: string;
  /** Epoch seconds from which a signing key signs; published before that. */
  activates_at: number;
  /** Epoch seconds from which a superseded signing key is no longer published. */
  retires_at: number | null;
}

/** An API (resource server) that access tokens can be issued for (RFC 8707). */
export interface ApiTable {
  id: string;
  /** The resource indicator and the `aud` of its tokens, e.g. https://api.example.com */
  identifier: string;
  name: string;
  /** Seconds; null uses the global access-token lifetime. */
  access_token_ttl: number | null;
  /** RS256, ES256 or EdDSA; null is RS256. */
  access_token_signing_alg: string | null;
  created_at: string;
}

export interface ApiScopeTable {
  api_id: string;
  name: string;
  description: string | null;
  created_at: string;
}

/** A role grants a scope (permission) of an API. */
export interface RolePermissionTable {
  role_id: string;
  api_id: string;
  scope: string;
  created_at: string;
}

/** Roles of service clients, whose permissions they receive through client_credentials. */
export interface ClientRoleTable {
  client_id: string;
  role_id: string;
  created_at: string;
}

/** Failed sign-ins counted under a key: `account:<email>` or `ip:<address>`. */
export interface SignInThrottleTable {
  key: string;
  failures: number;
  last_failure_at: number;
  blocked_until: number | null;
}

/** A security event: who did what, when, from where, and how it ended. */
export interface AuditEventTable {
  id: string;
  at: string;
  event: string;
  outcome: string;
  reason: string | null;
  /** Who acted: a user id for sign-ins, `user@host` for the admin script. */
  actor: string | null;
  user_id: string | null;
  email: string | null;
  client_id: string | null;
  ip: string | null;
  details: string | null;
}

/** An upstream OpenID Connect provider people may sign in with. */
export interface IdentityProviderTable {
  /** A short slug, used in URLs and commands. */
  id: string;
  name: string;
  issuer: string;
  client_id: string;
  client_secret_sealed: string | null;
  scope: string;
  button_label: string | null;
  allow_signup: number;
  link_by_verified_email: number;
  refresh_profile: number;
  /** An upstream claim whose values map to roles, and the map (JSON {value: role}). */
  role_claim: string | null;
  role_map: string | null;
  disabled: number;
  created_at: string;
}

export interface UserLinkTable {
  provider_id: string;
  subject: string;
  user_id: string;
  created_at: string;
}

export interface FederationFlowTable {
  state: string;
  interaction_uid: string;
  provider_id: string;
  nonce: string;
  code_verifier: string;
  /** Set when the upstream account matched a user who must sign in with a password once to link. */
  pending_subject: string | null;
  /** The user that the pending link is for: only they may complete it. */
  pending_email: string | null;
  /** The user the upstream account resolved to, until the interaction picks the sign-in up. */
  resolved_user_id: string | null;
  expires_at: number;
}

/** One row: a counter that triggers bump with every change to clients, APIs, roles and grants. */
export interface RegistryVersionTable {
  id: number;
  version: number;
}
