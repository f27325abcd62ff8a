import crypto from 'node:crypto';
import type { Context, Next } from 'koa';
import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One registry per server: no global state, so tests can run several servers side by side. */
export function createMetrics(options: { pool?: pg.Pool } = {}) {
  const registry = new Registry();
  // The event-loop delay histogram samples every 100 ms rather than prom-client's 10: each
  // sample wakes the event loop, and under a hypervisor a hundred wake-ups a second cost an idle
  // server six to eight times the CPU it otherwise uses. Stalls of 100 ms and more are always
  // seen; shorter ones in proportion to their length.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const requests = new Counter({
    name: 'latchkey_http_requests_total',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'HTTP request latency by route.',
    labelNames: ['route', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const signIns = new Counter({
    name: 'latchkey_sign_ins_total',
    help: 'Password sign-in attempts by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'latchkey_tokens_issued_total',
    help: 'Successful token endpoint grants by grant type.',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  if (options.pool) {
    const pool = options.pool;
    new Gauge({
      name: 'latchkey_db_pool_connections',
      help: 'Database pool connections by state.',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        this.set({ state: 'total' }, pool.totalCount);
        this.set({ state: 'idle' }, pool.idleCount);
        this.set({ state: 'waiting' }, pool.waitingCount);
      },
    });
  }

  return {
    registry,
    signIn: (outcome: 'success' | 'failure') => signIns.inc({ outcome }),
    tokenIssued: (grantType: string) => tokens.inc({ grant_type: grantType }),
    /** Counts and times every request, labelled by route name, never by raw path. */
    middleware() {
      return async (ctx: Context, next: Next) => {
        const started = process.hrtime.bigint();
        try {
          await next();
        } finally {
          const route = (ctx.oidc as { route?: string } | undefined)?.route ?? (ctx._matchedRoute ? String(ctx._matchedRoute) : 'unmatched');
          const method = ctx.req.method ?? '';
          duration.observe({ route, method }, Number(process.hrtime.bigint() - started) / 1e9);
          requests.inc({ route, method, status: String(ctx.res.statusCode) });
        }
      };
    },
    /** Serves the registry, behind a bearer token when one is given. */
    handler(token: string | null) {
      const expected = token ? crypto.createHash('sha256').update(token).digest() : null;
      return async (ctx: Context) => {
        if (expected) {
          const presented = /^Bearer (.+)$/.exec(ctx.get('authorization'))?.[1] ?? '';
          const digest = crypto.createHash('sha256').update(presented).digest();
          if (!crypto.timingSafeEqual(digest, expected)) {
            ctx.status = 401;
            ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
            ctx.body = { error: 'invalid_token' };
            return;
          }
        }
        ctx.set('Cache-Control', 'no-store');
        ctx.type = registry.contentType;
        ctx.body = await registry.metrics();
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
