import Koa from 'koa';
import mount from 'koa-mount';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Config } from './config.ts';
import type { Database } from './db/schema.ts';
import { createPasswordHasher, type PasswordHasher } from './accounts/passwords.ts';
import { ensureProviderKeys } from './keys/keys.ts';
import { resolveSecretBox } from './keys/secret-box.ts';
import { createProvider } from './oidc/provider.ts';
import { createCsrf } from './interactions/csrf.ts';
import { createPageRenderer } from './interactions/render.ts';
import { createInteractionRouter } from './interactions/routes.ts';
import { errorPages, jsonLogger, type Logger } from './http/errors.ts';
import { securityHeaders } from './http/security-headers.ts';
import { createStaticRouter } from './http/static-assets.ts';
import { systemClock, type Clock } from './time.ts';

export interface ServerDependencies {
  config: Config;
  db: Kysely<Database>;
  clock?: Clock;
  log?: Logger;
  hasher?: PasswordHasher;
}

export interface LatchkeyServer {
  app: Koa;
  provider: Provider;
}

/** Builds the Koa app on a migrated database. No side effects beyond creating missing keys. */
export async function createServer({ config, db, clock = systemClock, log = jsonLogger, hasher }: ServerDependencies): Promise<LatchkeyServer> {
  const secretBox = resolveSecretBox(config, (message) => log({ level: 'warn', event: 'development_secret', message }));
  const keys = await ensureProviderKeys(db, secretBox);
  const renderPage = createPageRenderer({ cache: config.production });
  const provider = createProvider({ config, db, keys, secretBox, renderPage, clock });
  provider.on('server_error', (_ctx, err) => log({ level: 'error', event: 'server_error', error: err.stack }));
  provider.on('backchannel.error', (_ctx, err, client) =>
    log({ level: 'warn', event: 'backchannel_logout_failed', clientId: client.clientId, error: err.message }),
  );

  const app = new Koa();
  // koa-mount runs the provider's middleware on this app's context, so cookies it sets are
  // signed with this app's keys: they must be the provider's cookie keys.
  app.keys = keys.cookie;
  app.proxy = config.trustProxy;
  app.silent = true;

  const interactions = createInteractionRouter({
    provider,
    db,
    hasher: hasher ?? createPasswordHasher(config.argon2),
    csrf: createCsrf(keys.cookie[0]!),
    renderPage,
  });
  const assets = createStaticRouter();

  app.use(securityHeaders({ https: new URL(config.issuer).protocol === 'https:' }));
  app.use(errorPages(renderPage, log));
  app.use(assets.routes());
  app.use(interactions.routes());
  app.use(interactions.allowedMethods());
  app.use(mount(provider));
  return { app, provider };
}
