import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type OpenDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createServer, type LatchkeyServer } from '../../src/server.ts';
import type { Logger } from '../../src/http/logging.ts';
import type { PasswordHasher } from '../../src/accounts/passwords.ts';
import { createTestDatabase, testEnv, type TestDatabase } from './database.ts';
import { TEST_PASSWORD } from './admin.ts';

export { tempDatabaseFile } from './database.ts';

export interface RunningServer {
  issuer: string;
  /** Where this instance listens; differs from the issuer when instances share one behind a proxy. */
  url: string;
  databaseUrl: string;
  database: OpenDatabase;
  /** The oidc-provider instance serving now. */
  readonly provider: LatchkeyServer['provider'];
  logs: Record<string, unknown>[];
  /** Makes the instance re-read its signing keys now, as its timer would within KEY_REFRESH_SECONDS. */
  refreshKeys(): Promise<boolean>;
  /** Stops the server and closes the database, then starts both again on the same file and port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

// What must never appear in a log line: the suite's password, anything shaped like a JWT (ID,
// access, logout tokens), and query strings (which carry codes and states).
const LEAKS: [RegExp, string][] = [
  [new RegExp(TEST_PASSWORD), 'the test password'],
  [/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/, 'a JWT'],
  [/"path":"[^"]*\?/, 'a query string'],
  [/client_secret"?\s*[:=]\s*"?[A-Za-z0-9_-]{20,}/, 'a client secret'],
];

/**
 * Every test server's logs are checked when it closes, so the whole suite doubles as a test
 * that no secret reaches a log line.
 */
function assertNoSecretsIn(logs: Record<string, unknown>[]) {
  const text = logs.map((l) => JSON.stringify(l)).join('\n');
  for (const [pattern, what] of LEAKS) {
    const match = pattern.exec(text);
    if (match) throw new Error(`${what} reached the logs: …${text.slice(Math.max(0, match.index - 80), match.index + 80)}…`);
  }
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A real Latchkey on an ephemeral loopback port, with a database of its own (or a shared one). */
export async function startLatchkey(
  options: { databaseUrl?: string; issuer?: string; env?: Record<string, string>; hasher?: PasswordHasher } = {},
): Promise<RunningServer> {
  // A server given a database shares it (several instances); one that makes its own drops it.
  const owned: TestDatabase | undefined = options.databaseUrl ? undefined : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? owned!.url;
  const logs: Record<string, unknown>[] = [];
  let database: OpenDatabase;
  const log: Logger = (entry) => logs.push(entry);
  let port = 0;
  let httpServer: http.Server;
  let latchkey: LatchkeyServer;

  async function start() {
    httpServer = http.createServer();
    port = await listen(httpServer, port);
    const config = loadConfig({ ...options.env, ...testEnv(databaseUrl), ISSUER: options.issuer ?? `http://127.0.0.1:${port}` });
    database = openDatabase(databaseUrl, { onPoolError: (err) => log({ level: 'warn', event: 'database_connection_lost', error: err.message }) });
    await migrateToLatest(database.db);
    latchkey = await createServer({ config, db: database.db, pool: database.pool, log, hasher: options.hasher });
    httpServer.on('request', latchkey.app.callback());
  }

  async function stop() {
    latchkey.stop();
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    await database.close();
  }

  await start();
  return {
    get issuer() {
      return options.issuer ?? `http://127.0.0.1:${port}`;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    databaseUrl,
    get database() {
      return database;
    },
    get provider() {
      return latchkey.provider;
    },
    refreshKeys: () => latchkey.refreshKeys(),
    logs,
    async close() {
      await stop();
      await owned?.drop();
      assertNoSecretsIn(logs);
    },
    async restart() {
      await stop();
      // Let clients see their kept-alive connections close before the port is reused, as
      // they would across a real restart.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await start();
    },
  };
}
