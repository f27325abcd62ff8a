import { PassThrough, Readable } from 'node:stream';
import { runAdmin } from '../../src/admin/cli.ts';
import { testEnv } from './database.ts';

export interface AdminResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json commands). */
  json<T = any>(): T;
}

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

/** Runs the admin script's commands in-process against a database file, as the CLI would. */
export async function admin(databaseUrl: string, argv: string[], stdin = '', env: Record<string, string> = {}): Promise<AdminResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = collect(stdout);
  const err = collect(stderr);
  const code = await runAdmin(argv, {
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout,
    stderr,
    env: { ...testEnv(databaseUrl), ...env },
  });
  const result = { code, stdout: out(), stderr: err() };
  return { ...result, json: () => JSON.parse(result.stdout) };
}

export const TEST_PASSWORD = 'correct horse battery staple';

export async function registerApp(databaseUrl: string, redirectUri: string, extra: string[] = []) {
  const r = await admin(databaseUrl, ['client', 'create', '--name', 'Test App', '--redirect-uri', redirectUri, '--json', ...extra]);
  if (r.code !== 0) throw new Error(`client create failed: ${r.stderr}`);
  return r.json<{ clientId: string; clientSecret: string | null }>();
}

export async function registerUser(databaseUrl: string, email: string, extra: string[] = [], password = TEST_PASSWORD) {
  const r = await admin(databaseUrl, ['user', 'create', '--email', email, '--password-stdin', '--json', ...extra], `${password}\n`);
  if (r.code !== 0) throw new Error(`user create failed: ${r.stderr}`);
  return r.json<{ id: string; email: string }>();
}
