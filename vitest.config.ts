import net from 'node:net';
import { defineConfig } from 'vitest/config';

const POSTGRES_URL = process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Whether a PostgreSQL server answers, so the suite can also run against it. */
function postgresReachable(): Promise<boolean> {
  const { hostname, port } = new URL(POSTGRES_URL);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 5432) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export default defineConfig(async () => {
  const withPostgres = process.env.LATCHKEY_TEST_SKIP_POSTGRES !== '1' && (await postgresReachable());
  if (!withPostgres) {
    console.warn(`PostgreSQL is not reachable at ${new URL(POSTGRES_URL).host}: the PostgreSQL run of the suite is skipped (SQLite only).`);
  }
  const shared = { include: ['test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000, pool: 'forks' as const };
  return {
    test: {
      projects: [
        { test: { ...shared, name: 'sqlite', env: { LATCHKEY_TEST_DIALECT: 'sqlite' } } },
        ...(withPostgres ? [{ test: { ...shared, name: 'postgres', env: { LATCHKEY_TEST_DIALECT: 'postgres', LATCHKEY_TEST_POSTGRES_URL: POSTGRES_URL } } }] : []),
      ],
    },
  };
});
