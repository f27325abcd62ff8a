import * as oidc from 'openid-client';
import type { ProviderRow } from './providers.ts';
import { clientSecretOf } from './providers.ts';
import type { SecretBox } from '../keys/secret-box.ts';

const DISCOVERY_TTL_MS = 60 * 60 * 1000;
const TIMEOUT_SECONDS = 5;

/** The upstream could not be reached or did not answer as an OpenID Provider. */
export class UpstreamUnavailable extends Error {}

/**
 * openid-client configurations, one per provider, from the upstream's discovery document. Kept
 * for an hour; openid-client caches the upstream's JWKS inside and refetches it on a new key.
 */
export function createUpstreamDirectory(box: SecretBox) {
  const cache = new Map<string, { config: oidc.Configuration; fetchedAt: number; fingerprint: string }>();

  return async function configurationFor(row: ProviderRow): Promise<oidc.Configuration> {
    const fingerprint = `${row.issuer} ${row.client_id} ${row.client_secret_sealed ?? ''}`;
    const cached = cache.get(row.id);
    if (cached && cached.fingerprint === fingerprint && Date.now() - cached.fetchedAt < DISCOVERY_TTL_MS) return cached.config;
    const secret = clientSecretOf(row, box);
    // Plain http is only ever accepted for loopback issuers (see checkIssuer).
    const insecure = new URL(row.issuer).protocol === 'http:';
    let config: oidc.Configuration;
    // openid-client leaves a token endpoint's ID token signature unchecked, as OIDC Core
    // §3.1.3.7 allows when TLS vouches for the issuer. Accounts are created and linked from
    // these claims, so the signature is checked against the upstream's published keys as well:
    // a TLS-intercepting proxy or a misissued certificate must not be enough to sign someone in.
    const execute = [oidc.enableNonRepudiationChecks, ...(insecure ? [oidc.allowInsecureRequests] : [])];
    try {
      config = await oidc.discovery(new URL(row.issuer), row.client_id, secret, secret ? oidc.ClientSecretBasic(secret) : oidc.None(), { timeout: TIMEOUT_SECONDS, execute });
    } catch (err) {
      throw new UpstreamUnavailable(`discovery at ${row.issuer} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    cache.set(row.id, { config, fetchedAt: Date.now(), fingerprint });
    return config;
  };
}

export type UpstreamDirectory = ReturnType<typeof createUpstreamDirectory>;
