import type { Kysely } from 'kysely';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Database } from '../db/schema.ts';
import { clientSecretMatches } from '../clients/client-secrets.ts';
import type { ProviderKeys } from '../keys/keys.ts';
import type { RenderPage } from '../interactions/render.ts';
import type { Clock } from '../time.ts';
import { createAdapterFactory } from './adapter.ts';
import { findAccount } from './accounts.ts';
import { scopeClaims, supportedScopes } from './scopes.ts';
import { errorPageFor } from './error-pages.ts';
import { createInteractionPolicy } from './interaction-policy.ts';

export interface ProviderDependencies {
  config: Config;
  db: Kysely<Database>;
  keys: ProviderKeys;
  renderPage: RenderPage;
  clock: Clock;
}

export function createProvider({ config, db, keys, renderPage, clock }: ProviderDependencies): Provider {
  const configuration: Configuration = {
    adapter: createAdapterFactory(db, clock),
    clients: [],
    findAccount: (ctx, sub) => findAccount(db, sub),
    claims: Object.fromEntries(Object.entries(scopeClaims).map(([scope, claims]) => [scope, [...claims]])),
    scopes: [...supportedScopes],
    // The brief promises email, name and roles in the ID token itself, not only at userinfo.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    // Secret-based JWT methods need the plain secret, which Latchkey does not keep.
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
    },
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    cookies: {
      keys: keys.cookie,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    jwks: { keys: keys.signing as NonNullable<Configuration['jwks']>['keys'] },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          const client = (ctx as KoaContextWithOIDC).oidc.client;
          ctx.type = 'html';
          ctx.body = await renderPage('logout', {
            title: 'Sign out',
            clientName: client?.clientName ?? null,
            form,
          });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = await renderPage('logged-out', { title: 'Signed out' });
        },
      },
    },
    interactions: {
      policy: createInteractionPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 10 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Grant: 14 * 24 * 60 * 60,
      RefreshToken: 14 * 24 * 60 * 60,
      Session: 14 * 24 * 60 * 60,
    },
    rotateRefreshToken: true,
    async renderError(ctx, out) {
      const page = errorPageFor(out.error, out.error_description);
      ctx.type = 'html';
      ctx.body = await renderPage('error', { title: page.title, message: page.message, reference: null });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;

  // The clients table holds a SHA-256 digest where oidc-provider expects the secret, so the
  // presented secret is digested before the constant-time comparison.
  provider.Client.prototype.compareClientSecret = async function compareDigest(this: { clientSecret?: string }, actual: string) {
    return typeof this.clientSecret === 'string' && clientSecretMatches(this.clientSecret, actual);
  };

  return provider;
}
