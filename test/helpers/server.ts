import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type OpenDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createServer } from '../../src/server.ts';
import type { Logger } from '../../src/http/errors.ts';
import type { PasswordHasher } from '../../src/accounts/passwords.ts';

export function tempDatabaseFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-test-'));
  return path.join(dir, 'latchkey.sqlite');
}

export interface RunningServer {
  issuer: string;
  databaseFile: string;
  database: OpenDatabase;
  logs: Record<string, unknown>[];
  /** Stops the server and closes the database, then starts both again on the same file and port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A real Latchkey on an ephemeral loopback port and a SQLite file of its own. */
export async function startLatchkey(
  options: { databaseFile?: string; env?: Record<string, string>; hasher?: PasswordHasher } = {},
): Promise<RunningServer> {
  const databaseFile = options.databaseFile ?? tempDatabaseFile();
  const logs: Record<string, unknown>[] = [];
  const log: Logger = (entry) => logs.push(entry);
  let port = 0;
  let httpServer: http.Server;
  let database: OpenDatabase;

  async function start() {
    httpServer = http.createServer();
    port = await listen(httpServer, port);
    const config = loadConfig({ ...options.env, ISSUER: `http://127.0.0.1:${port}`, DATABASE_URL: databaseFile });
    database = openDatabase(databaseFile);
    await migrateToLatest(database.db);
    const { app } = await createServer({ config, db: database.db, log, hasher: options.hasher });
    httpServer.on('request', app.callback());
  }

  async function stop() {
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    await database.close();
  }

  await start();
  return {
    get issuer() {
      return `http://127.0.0.1:${port}`;
    },
    databaseFile,
    get database() {
      return database;
    },
    logs,
    async restart() {
      await stop();
      // Let clients see their kept-alive connections close before the port is reused, as
      // they would across a real restart.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await start();
    },
    close: stop,
  };
}
