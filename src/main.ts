import './oidc/install-english-lists.ts';
import http from 'node:http';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase, type OpenDatabase } from './db/database.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createMetricsApp, createServer, type LatchkeyServer } from './server.ts';
import { runHousekeeping } from './housekeeping.ts';
import { createPinoLogger, stdoutDestination } from './http/logging.ts';
import { systemClock } from './time.ts';

function fail(message: string, code: number): never {
  console.error(`latchkey: ${message}`);
  process.exit(code);
}

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(`invalid setting ${err.message}`, 2);
    throw err;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

const config = readConfig();
// libuv sizes its pool when it is first used, which has not happened yet.
process.env.UV_THREADPOOL_SIZE = String(config.threadPoolSize);
const log = createPinoLogger(config.logLevel, stdoutDestination(config.logBufferBytes));
let database: OpenDatabase;
let server: http.Server;
let metricsServer: http.Server | undefined;
let latchkey: LatchkeyServer;
try {
  database = openDatabase(config.databaseUrl, {
    onPoolError: (err) => log({ level: 'warn', event: 'database_connection_lost', error: err.message }),
  });
  const applied = await migrateToLatest(database.db);
  if (applied.length) log({ level: 'info', event: 'migrated', migrations: applied });
  latchkey = await createServer({ config, db: database.db, pool: database.pool, log });
  server = http.createServer(latchkey.app.callback());
  await listen(server, config.port, config.host);
  if (config.metrics.port !== null) {
    metricsServer = http.createServer(createMetricsApp(latchkey.metrics).callback());
    await listen(metricsServer, config.metrics.port, config.metrics.host);
  }
} catch (err) {
  fail(`could not start: ${err instanceof Error ? err.message : String(err)}`, 1);
}
log({ level: 'info', event: 'listening', issuer: config.issuer, host: config.host, port: config.port, metricsPort: config.metrics.port });

const purge = setInterval(() => {
  runHousekeeping(database.db, config, systemClock)
    .then((result) => log({ level: 'info', event: 'housekeeping', ...result }))
    .catch((err: Error) => log({ level: 'warn', event: 'housekeeping_failed', error: err.message }));
}, config.purgeIntervalSeconds * 1000);
purge.unref();

function shutDown(signal: string) {
  log({ level: 'info', event: 'shutting_down', signal });
  clearInterval(purge);
  latchkey.stop();
  metricsServer?.close();
  // Stop accepting connections; the callback runs once in-flight requests have finished.
  server.close(() => {
    void database.close().then(() => {
      log({ level: 'info', event: 'stopped' });
      process.exit(0);
    });
  });
  server.closeIdleConnections();
  setTimeout(() => {
    log({ level: 'warn', event: 'shutdown_timeout', seconds: config.shutdownTimeoutSeconds });
    process.exit(1);
  }, config.shutdownTimeoutSeconds * 1000).unref();
}
process.once('SIGTERM', () => shutDown('SIGTERM'));
process.once('SIGINT', () => shutDown('SIGINT'));
