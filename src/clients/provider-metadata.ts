import type { ClientAuthMethod, ClientMetadata } from 'oidc-provider';
import type { ClientRow } from './clients.ts';
import { toClient } from './clients.ts';
import { supportedScopes } from '../oidc/scopes.ts';
import type { SecretBox } from '../keys/secret-box.ts';

/**
 * The oidc-provider view of a client row. The stored secret digest stands in for
 * `client_secret`; the provider compares presented secrets through our digest check
 * (see compareClientSecret in src/oidc/provider.ts), so the plain secret is never stored.
 * client_secret_jwt clients are the exception: the provider needs the secret as an HMAC key,
 * so it is opened from its sealed copy.
 */
export function toProviderMetadata(row: ClientRow, box: SecretBox): ClientMetadata {
  const client = toClient(row);
  const metadata: ClientMetadata = {
    client_id: client.clientId,
    client_name: client.name,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod as ClientAuthMethod,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    // Also refused when the client is registered, for a row written by other means.
    grant_types: client.tokenEndpointAuthMethod === 'none' ? client.grantTypes.filter((g) => g !== 'client_credentials') : client.grantTypes,
    response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
    id_token_signed_response_alg: client.idTokenSigningAlg as ClientMetadata['id_token_signed_response_alg'],
  };
  // The provider's `scope` allow-list covers OpenID Connect scopes only; API scopes are
  // decided per API in src/oidc/resources.ts.
  const oidcScopes = client.scope.split(' ').filter((s) => (supportedScopes as readonly string[]).includes(s));
  if (!client.service) metadata.scope = oidcScopes.join(' ');
  if (row.secret_sealed) metadata.client_secret = box.open(row.secret_sealed, `client-secret:${row.client_id}`);
  else if (row.secret_digest) metadata.client_secret = row.secret_digest;
  if (client.jwks) metadata.jwks = client.jwks as ClientMetadata['jwks'];
  if (client.jwksUri) metadata.jwks_uri = client.jwksUri;
  if (client.backchannelLogoutUri) {
    metadata.backchannel_logout_uri = client.backchannelLogoutUri;
    metadata.backchannel_logout_session_required = true;
  }
  return metadata;
}
