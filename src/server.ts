import Koa from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import Provider from 'oidc-provider';
import type { Config } from './config.ts';
import type { Database } from './db/schema.ts';
import { isDatabaseUnavailable } from './db/unavailable.ts';
import { createPasswordHasher, type PasswordHasher } from './accounts/passwords.ts';
import { ensureProviderKeys, loadProviderKeys, type ProviderKeys } from './keys/keys.ts';
import { resolveSecretBox } from './keys/secret-box.ts';
import { createProvider } from './oidc/provider.ts';
import { createRegistryCache } from './registry/registry-cache.ts';
import { createCsrf } from './interactions/csrf.ts';
import { createPageRenderer } from './interactions/render.ts';
import { loadCatalogue } from './i18n/catalogue.ts';
import { createFederationRouter } from './federation/routes.ts';
import { createUpstreamDirectory } from './federation/upstream.ts';
import { createInteractionRouter } from './interactions/routes.ts';
import { errorPages } from './http/errors.ts';
import { requestLogging, type Logger } from './http/logging.ts';
import { securityHeaders } from './http/security-headers.ts';
import { createCookieKeys } from './http/cookie-keys.ts';
import { createStaticRouter } from './http/static-assets.ts';
import { createHealthRouter } from './http/health.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { bodySizeLimit } from './http/request-limits.ts';
import { dispatchToRoutersOrProvider } from './http/route-dispatch.ts';
import { epochSeconds, systemClock, type Clock } from './time.ts';
import { recordAudit, type AuditEvent } from './audit/audit.ts';

export interface ServerDependencies {
  config: Config;
  db: Kysely<Database>;
  log: Logger;
  /** PostgreSQL's pool, for the metrics gauges. */
  pool?: pg.Pool;
  clock?: Clock;
  hasher?: PasswordHasher;
}

export interface LatchkeyServer {
  app: Koa;
  /** The provider serving now; replaced when the signing keys change. */
  readonly provider: Provider;
  metrics: Metrics;
  /** Re-reads the signing keys now (it also happens every KEY_REFRESH_SECONDS); true if they changed. */
  refreshKeys(): Promise<boolean>;
  /** Stops the background key refresh. */
  stop(): void;
}

/** Builds the Koa app on a migrated database. No side effects beyond creating missing keys. */
export async function createServer({ config, db, log, pool, clock = systemClock, hasher }: ServerDependencies): Promise<LatchkeyServer> {
  const secretBox = resolveSecretBox(config, (message) => log({ level: 'warn', event: 'development_secret', message }));
  const initialKeys = await ensureProviderKeys(db, secretBox, epochSeconds(clock));
  const catalogue = loadCatalogue({ product: config.branding.productName });
  const renderPage = createPageRenderer({ cache: config.production, catalogue, branding: config.branding });
  const metrics = createMetrics({ pool });
  // Made once: nothing rotates cookie keys, so the provider's rebuilds keep them.
  const cookieKeys = createCookieKeys(initialKeys.cookie);
  // Kept across provider rebuilds (key rotation); oidc-provider knows which request is current.
  const registry = createRegistryCache(db, () => Provider.ctx);
  const audit = (event: AuditEvent) => recordAudit(db, event, clock.now());
  // Provider events are not awaited by the provider; a failed audit write is logged.
  const auditLater = (event: AuditEvent) => {
    audit(event).catch((err: Error) => log({ level: 'error', event: 'audit_write_failed', audit: event.event, error: err.message }));
  };

  function buildProvider(keys: ProviderKeys): Provider {
    const provider = createProvider({ config, db, keys, cookieKeys, secretBox, renderPage, clock, registry });
    provider.on('server_error', (ctx, err) => {
      // The provider has answered 500 already; a database outage is turned into a 503 upstream.
      if (isDatabaseUnavailable(err)) ctx.state.databaseUnavailable = true;
      else log({ level: 'error', event: 'server_error', requestId: ctx.state.requestId, error: err.stack });
    });
    provider.on('grant.success', (ctx) => metrics.tokenIssued(String(ctx.oidc.params?.grant_type ?? 'unknown')));
    provider.on('backchannel.error', (_ctx, err, client) =>
      log({ level: 'warn', event: 'backchannel_logout_failed', clientId: client.clientId, error: err.message }),
    );
    provider.on('end_session.success', (ctx) =>
      auditLater({ event: 'logout', outcome: 'success', userId: ctx.oidc.session?.accountId, clientId: ctx.oidc.client?.clientId, ip: ctx.ip }),
    );
    provider.on('grant.revoked', (ctx, grantId) =>
      auditLater({ event: 'grant.revoked', outcome: 'success', clientId: ctx.oidc?.client?.clientId, ip: ctx.ip, details: { grantId, route: ctx.oidc?.route } }),
    );
    // Tokens are also destroyed on rotation and expiry; only the revocation endpoint is audited.
    const auditRevocation = (type: string, token: { accountId?: string; clientId?: string }) => {
      const ctx = Provider.ctx;
      if (ctx?.oidc?.route !== 'revocation') return;
      auditLater({ event: 'token.revoked', outcome: 'success', userId: token.accountId, clientId: token.clientId, ip: ctx.ip, details: { type } });
    };
    provider.on('access_token.destroyed', (token) => auditRevocation('access_token', token));
    provider.on('refresh_token.destroyed', (token) => auditRevocation('refresh_token', token));
    return provider;
  }

  // The provider is rebuilt when the signing keys change (a rotation, or a pending key whose
  // time has come); requests already inside the old one finish there.
  let current = { keys: initialKeys, provider: buildProvider(initialKeys) };
  let mounted = mount(current.provider);
  async function refreshKeys(): Promise<boolean> {
    const keys = await loadProviderKeys(db, secretBox, epochSeconds(clock));
    if (keys.fingerprint === current.keys.fingerprint) return false;
    current = { keys, provider: buildProvider(keys) };
    mounted = mount(current.provider);
    log({ level: 'info', event: 'signing_keys_changed', algorithms: keys.signingAlgs, published: keys.signing.length });
    return true;
  }
  const keyRefresh = setInterval(() => {
    refreshKeys().catch((err: Error) => log({ level: 'warn', event: 'signing_keys_refresh_failed', error: err.message }));
  }, config.keys.refreshSeconds * 1000);
  keyRefresh.unref();

  const app = new Koa();
  // koa-mount runs the provider's middleware on this app's context, so cookies it sets are
  // signed with this app's keys: they must be the provider's cookie keys.
  app.keys = cookieKeys;
  app.proxy = config.trustProxy;
  app.silent = true;

  const csrf = createCsrf(initialKeys.cookie[0]!);
  const interactions = createInteractionRouter({
    provider: () => current.provider,
    db,
    hasher: hasher ?? createPasswordHasher(config.argon2),
    csrf,
    renderPage,
    onSignIn: metrics.signIn,
    audit,
    throttling: config.throttling,
    clock,
  });
  const federation = createFederationRouter({
    provider: () => current.provider,
    db,
    csrf,
    upstream: createUpstreamDirectory(secretBox),
    issuer: config.issuer,
    audit,
    clock,
  });
  const operations = createHealthRouter(db, () => current.keys.signing.length > 0);
  if (config.metrics.token) operations.get('/metrics', metrics.handler(config.metrics.token));

  app.use(requestLogging(log));
  app.use(metrics.middleware());
  app.use(securityHeaders({ https: new URL(config.issuer).protocol === 'https:' }));
  app.use(errorPages(renderPage, log, catalogue.locale('en').t));
  app.use(bodySizeLimit());
  const routers = [operations, createStaticRouter(config.branding), interactions, federation];
  app.use(dispatchToRoutersOrProvider(routers, (ctx, next) => mounted(ctx, next)));
  return {
    app,
    get provider() {
      return current.provider;
    },
    metrics,
    refreshKeys,
    stop: () => clearInterval(keyRefresh),
  };
}

/** The separate metrics listener (METRICS_PORT): /metrics only, no token. */
export function createMetricsApp(metrics: Metrics): Koa {
  const router = new Router();
  router.get('/metrics', metrics.handler(null));
  const app = new Koa();
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
