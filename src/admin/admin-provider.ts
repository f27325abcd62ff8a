import type Provider from 'oidc-provider';
import type { CommandContext } from './cli.ts';
import { createProvider } from '../oidc/provider.ts';
import { loadProviderKeys } from '../keys/keys.ts';
import { createRegistryCache } from '../registry/registry-cache.ts';
import { epochSeconds, systemClock } from '../time.ts';
import type { RenderPage } from '../interactions/render.ts';
import type { CookieKeys } from '../http/cookie-keys.ts';

const noPages: RenderPage = async () => {
  throw new Error('the admin script renders no pages');
};

const noCookies: CookieKeys = {
  sign() {
    throw new Error('the admin script sets no cookies');
  },
  verify: () => false,
  index: () => -1,
};

/**
 * An oidc-provider on the same settings, keys and database as the servers, for what only the
 * provider knows how to do (signing logout tokens). It serves no requests.
 */
export async function adminProvider({ db, config, secretBox }: CommandContext): Promise<Provider> {
  const box = secretBox();
  const keys = await loadProviderKeys(db, box, epochSeconds(systemClock));
  return createProvider({ config, db, keys, cookieKeys: noCookies, secretBox: box, renderPage: noPages, clock: systemClock, registry: createRegistryCache(db, () => undefined) });
}
