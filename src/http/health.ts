import Router from '@koa/router';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { migrationStatus } from '../db/migrate.ts';

const DATABASE_CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Why the instance cannot serve traffic, or null when it can. */
async function notReadyBecause(db: Kysely<Database>, keysLoaded: () => boolean): Promise<string | null> {
  if (!keysLoaded()) return 'signing keys are not loaded';
  try {
    await withTimeout(sql`select 1`.execute(db), DATABASE_CHECK_TIMEOUT_MS);
  } catch (err) {
    return `database unreachable: ${err instanceof Error ? err.message : String(err)}`;
  }
  const pending = (await migrationStatus(db)).filter((m) => !m.applied);
  if (pending.length) return `database not migrated: ${pending.map((m) => m.name).join(', ')} pending`;
  return null;
}

/**
 * /healthz: the process is alive (for restarts). /readyz: it can serve (for load balancers):
 * the database answers, every migration is applied and the keys are loaded.
 */
export function createHealthRouter(db: Kysely<Database>, keysLoaded: () => boolean): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const reason = await notReadyBecause(db, keysLoaded);
    ctx.status = reason ? 503 : 200;
    ctx.body = reason ? { status: 'unavailable', reason } : { status: 'ready' };
  });
  return router;
}
