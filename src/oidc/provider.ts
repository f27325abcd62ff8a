import type { Kysely } from 'kysely';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Database } from '../db/schema.ts';
import { clientSecretMatches } from '../clients/client-secrets.ts';
import { isServiceGrantSet } from '../clients/clients.ts';
import type { ProviderKeys } from '../keys/keys.ts';
import type { CookieKeys } from '../http/cookie-keys.ts';
import type { SecretBox } from '../keys/secret-box.ts';
import type { RenderPage } from '../interactions/render.ts';
import type { RegistryCache } from '../registry/registry-cache.ts';
import { roleNamesOfClient, roleNamesOfUser } from '../rbac/roles.ts';
import { epochSeconds, type Clock } from '../time.ts';
import { createAdapterFactory } from './adapter.ts';
import { reuseClientInstances } from './client-instances.ts';
import { findAccount } from './accounts.ts';
import { scopeClaims, supportedScopes } from './scopes.ts';
import { errorPageFor } from './error-pages.ts';
import { createInteractionPolicy } from './interaction-policy.ts';
import { createResourceServerLookup, rolesFoundFor } from './resources.ts';
import { createDevicePages } from './device-pages.ts';

export interface ProviderDependencies {
  config: Config;
  db: Kysely<Database>;
  keys: ProviderKeys;
  /** The app's cookie keys: the provider checks its own cookies with them too. */
  cookieKeys: CookieKeys;
  secretBox: SecretBox;
  renderPage: RenderPage;
  clock: Clock;
  registry: RegistryCache;
}

export function createProvider({ config, db, keys, cookieKeys, secretBox, renderPage, clock, registry }: ProviderDependencies): Provider {
  const { tokens } = config;
  const Adapter = createAdapterFactory(db, clock, {
    refreshTokenReuseGrace: tokens.refreshTokenReuseGrace,
    secretBox,
    registry,
    // Reported as oidc-provider reports the grants it revokes itself, so the audit trail has it.
    onGrantRevoked: (grantId) => {
      const ctx = Provider.ctx;
      if (ctx) provider.emit('grant.revoked', ctx, grantId);
    },
  });
  const configuration: Configuration = {
    adapter: Adapter,
    // Every client comes from the adapter: client-instances.ts answers an id it does not know with none.
    clients: [],
    findAccount: (_ctx, sub) => findAccount(db, sub),
    claims: Object.fromEntries(Object.entries(scopeClaims).map(([scope, claims]) => [scope, [...claims]])),
    scopes: [...supportedScopes],
    // The brief promises email, name and roles in the ID token itself, not only at userinfo.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
    enabledJWA: {
      // Only algorithms with an active key: a key that is merely published never signs.
      idTokenSigningAlgValues: keys.signingAlgs,
      userinfoSigningAlgValues: keys.signingAlgs,
    },
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    cookies: {
      // Given as secrets, these would be wrapped in a new keygrip for every request that reads
      // the provider's own cookies (session, interaction, resume): several per sign-in step,
      // each HMAC re-deriving its key and each comparison two more HMACs.
      keys: cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    jwks: { keys: keys.signing as NonNullable<Configuration['jwks']>['keys'] },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // An app may introspect its own tokens; a service (an API's own client) may introspect
        // any, as resource servers do (RFC 7662 §2.1). A public app cannot prove who it is.
        // The token of a deleted app is inactive (the provider would otherwise fail reading it).
        allowedPolicy: async (ctx, caller, token) =>
          caller.clientAuthMethod !== 'none' &&
          (token.clientId === caller.clientId || (isServiceGrantSet(caller.grantTypes) && !!(await ctx.oidc.provider.Client.find(String(token.clientId))))),
      },
      revocation: {
        enabled: true,
        // Only the app a token was issued to may revoke it (RFC 7009 §2.1).
        allowedPolicy: async (_ctx, caller, token) => token.clientId === caller.clientId,
      },
      backchannelLogout: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      deviceFlow: { enabled: true, ...createDevicePages(renderPage) },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: createResourceServerLookup(db, tokens, registry, keys.signingAlgs),
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          const client = (ctx as KoaContextWithOIDC).oidc.client;
          await renderPage(ctx, 'logout', { title: 'logout.title', clientName: client?.clientName ?? null, form });
        },
        async postLogoutSuccessSource(ctx) {
          await renderPage(ctx, 'logged-out', { title: 'loggedOut.title' });
        },
      },
    },
    // API access tokens carry the roles of their subject (a person, or a service for
    // client_credentials) so an API can decide without calling back.
    async extraTokenClaims(ctx, token) {
      if (!token.resourceServer) return undefined;
      const found = rolesFoundFor(ctx);
      if (found) return { roles: found };
      if ('accountId' in token && token.accountId) return { roles: await roleNamesOfUser(db, token.accountId) };
      if (token.kind === 'ClientCredentials' && token.clientId) return { roles: await roleNamesOfClient(db, token.clientId) };
      return undefined;
    },
    interactions: {
      policy: createInteractionPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? tokens.accessTokenTtl,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? tokens.accessTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: 10 * 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Grant: tokens.refreshTokenAbsoluteTtl,
      Session: tokens.sessionTtl,
      // Each rotation renews the idle lifetime, but never past the chain's absolute lifetime.
      RefreshToken(_ctx, token) {
        const started = token.iiat ?? epochSeconds(clock);
        const remaining = started + tokens.refreshTokenAbsoluteTtl - epochSeconds(clock);
        return Math.max(1, Math.min(tokens.refreshTokenIdleTtl, remaining));
      },
    },
    // oidc-provider passes a dispatcher that refuses special-use addresses; dropping it is
    // an explicit operator choice for apps on a private network.
    fetch(url, init) {
      if (!config.allowPrivateNetworkFetch) return fetch(url, init);
      const { dispatcher: _ssrfGuard, ...options } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return fetch(url, options);
    },
    // Every use of a refresh token replaces it; a replaced one presented again revokes the grant.
    rotateRefreshToken: true,
    async renderError(ctx, out) {
      const page = errorPageFor(out.error, out.error_description);
      await renderPage(ctx, 'error', { title: page.title, message: page.message, vars: {}, detail: page.detail, backTo: null, reference: null });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  const clients = new Adapter('Client');
  reuseClientInstances(provider.Client, (id) => clients.find(id));

  // The clients table holds a SHA-256 digest where oidc-provider expects the secret, so the
  // presented secret is digested before the constant-time comparison.
  provider.Client.prototype.compareClientSecret = async function compareDigest(this: { clientSecret?: string }, actual: string) {
    return typeof this.clientSecret === 'string' && clientSecretMatches(this.clientSecret, actual);
  };

  return provider;
}
