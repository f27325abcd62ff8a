import http from 'node:http';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase, type OpenDatabase } from './db/database.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createServer } from './server.ts';
import { purgeExpiredPayloads } from './oidc/adapter.ts';
import { jsonLogger } from './http/errors.ts';
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

function listen(server: http.Server, config: Config): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
}

const config = readConfig();
let database: OpenDatabase;
let server: http.Server;
try {
  database = openDatabase(config.databaseUrl);
  const applied = await migrateToLatest(database.db);
  if (applied.length) jsonLogger({ level: 'info', event: 'migrated', migrations: applied });
  const { app } = await createServer({ config, db: database.db });
  server = http.createServer(app.callback());
  await listen(server, config);
} catch (err) {
  fail(`could not start: ${err instanceof Error ? err.message : String(err)}`, 1);
}
jsonLogger({ level: 'info', event: 'listening', issuer: config.issuer, host: config.host, port: config.port });

const purge = setInterval(() => {
  purgeExpiredPayloads(database.db, systemClock).catch((err: Error) =>
    jsonLogger({ level: 'error', event: 'purge_failed', error: err.message }),
  );
}, config.purgeIntervalSeconds * 1000);
purge.unref();

function shutDown(signal: string) {
  jsonLogger({ level: 'info', event: 'shutting_down', signal });
  clearInterval(purge);
  server.close(() => {
    void database.close().then(() => process.exit(0));
  });
  server.closeIdleConnections();
  // In-flight requests get ten seconds; then the process leaves regardless.
  setTimeout(() => process.exit(1), 10_000).unref();
}
process.once('SIGTERM', () => shutDown('SIGTERM'));
process.once('SIGINT', () => shutDown('SIGINT'));
