import type { Kysely } from 'kysely';
import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import type { TokenSettings } from '../config.ts';
import { findApiByIdentifier, sharedApiScopeNames } from '../apis/apis.ts';
import { accessOfClient, accessOfUser } from '../rbac/permissions.ts';
import type { RegistryCache } from '../registry/registry-cache.ts';

/**
 * The subject's roles, found while deciding the token's scopes, kept on the request so that
 * the token's `roles` claim (extraTokenClaims) does not query them again.
 */
export function rolesFoundFor(ctx: KoaContextWithOIDC | undefined): string[] | undefined {
  return ctx?.state?.latchkeySubjectRoles as string[] | undefined;
}

/**
 * The person a request acts for, wherever the provider keeps them at this step: the session at
 * the authorization endpoint (resources are checked before the account is loaded), the code,
 * refresh token or device code at the token endpoint.
 */
function subjectOf(ctx: KoaContextWithOIDC): string | undefined {
  const { entities } = ctx.oidc;
  return (
    ctx.oidc.account?.accountId ??
    entities.AuthorizationCode?.accountId ??
    entities.RefreshToken?.accountId ??
    entities.DeviceCode?.accountId ??
    (ctx.oidc.route === 'authorization' || ctx.oidc.route === 'resume' || ctx.oidc.route === 'device_resume' ? ctx.oidc.session?.accountId : undefined)
  );
}

/**
 * Resource indicators (RFC 8707): the `resource` a client names must be a registered API, and
 * the access token for it is a JWT (RFC 9068) whose audience is the API's identifier.
 *
 * What the token may carry is what the subject's roles grant: a person gets the permissions of
 * their roles (before they have signed in nothing is known, so every scope of the API stays on
 * the table until the login); a service gets the scopes of its roles, and those it was
 * registered with that no other API also defines. The provider intersects this with what was requested, so the consent page, the grant
 * and every refreshed token follow the roles as they are at that moment.
 */
export function createResourceServerLookup(db: Kysely<Database>, tokens: TokenSettings, registry: RegistryCache, signingAlgs: readonly string[]) {
  return async function getResourceServerInfo(
    ctx: KoaContextWithOIDC,
    indicator: string,
    client: { clientId: string },
  ): Promise<ResourceServer> {
    const api = await registry.get(['api', indicator], () => findApiByIdentifier(db, indicator));
    if (!api) throw new errors.InvalidTarget('the resource is not a registered API');
    // Its key may have been retired with no successor; refuse rather than sign with another.
    if (!signingAlgs.includes(api.tokenSigningAlg)) throw new errors.InvalidTarget(`no ${api.tokenSigningAlg} key is active to sign this API's tokens`);
    let scopes = api.scopes.map((s) => s.name);
    if (ctx.oidc.params?.grant_type === 'client_credentials') {
      const access = await registry.get(['client-access', client.clientId, api.id], () => accessOfClient(db, client.clientId, api.id));
      const shared = await registry.get(['shared-api-scopes'], () => sharedApiScopeNames(db));
      scopes = scopes.filter((s) => (access.registered.has(s) && !shared.has(s)) || access.granted.has(s));
      ctx.state.latchkeySubjectRoles = access.roles;
    } else {
      const subject = subjectOf(ctx);
      if (subject) {
        const access = await registry.get(['user-access', subject, api.id], () => accessOfUser(db, subject, api.id));
        scopes = scopes.filter((s) => access.granted.has(s));
        ctx.state.latchkeySubjectRoles = access.roles;
      }
    }
    return {
      scope: scopes.join(' '),
      audience: api.identifier,
      accessTokenTTL: api.accessTokenTtl ?? tokens.accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: api.tokenSigningAlg } },
    };
  };
}
