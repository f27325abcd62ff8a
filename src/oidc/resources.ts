import type { Kysely } from 'kysely';
import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import type { TokenSettings } from '../config.ts';
import { findApiByIdentifier } from '../apis/apis.ts';
import { findClientRow } from '../clients/clients.ts';

/**
 * Resource indicators (RFC 8707): the `resource` a client names must be a registered API, and
 * the access token for it is a JWT (RFC 9068) whose audience is the API's identifier.
 *
 * An app acting for a person may ask for any of the API's scopes (the person consents); a
 * service using client_credentials has no one to consent, so it gets only the API scopes it was
 * registered with.
 */
export function createResourceServerLookup(db: Kysely<Database>, tokens: TokenSettings) {
  return async function getResourceServerInfo(
    ctx: KoaContextWithOIDC,
    indicator: string,
    client: { clientId: string },
  ): Promise<ResourceServer> {
    const api = await findApiByIdentifier(db, indicator);
    if (!api) throw new errors.InvalidTarget('the resource is not a registered API');
    let scopes = api.scopes.map((s) => s.name);
    if (ctx.oidc.params?.grant_type === 'client_credentials') {
      const row = await findClientRow(db, client.clientId);
      const granted = new Set((row?.scope ?? '').split(' '));
      scopes = scopes.filter((s) => granted.has(s));
    }
    return {
      scope: scopes.join(' '),
      audience: api.identifier,
      accessTokenTTL: api.accessTokenTtl ?? tokens.accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  };
}
