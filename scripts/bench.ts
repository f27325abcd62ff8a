// Measures Latchkey's hot paths on loopback, against a fresh database, and bare oidc-provider's
// ceiling in the same run. `npm run bench -- --help` for the options.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import argon2 from 'argon2';
import { runAdmin } from '../src/admin/cli.ts';
import { runAutocannon, type AutocannonResult } from './bench/autocannon.ts';
import { signIn, type App } from './bench/sign-in.ts';

const HELP = `Usage: npm run bench -- [options]

  --duration SECONDS     measuring time per scenario (default 10)
  --warmup SECONDS       warm-up before each measurement (default 3)
  --connections N        concurrent connections for the HTTP scenarios (default 16)
  --sign-in-concurrency N  concurrent password sign-ins (default 2 x cores)
  --database PATH|URL    SQLite file or postgres:// URL (default: DATABASE_URL, else a fresh temp SQLite file)
  --out DIR              also write bench.json and bench.md there
  --smoke                one-second runs, to check the benchmark itself works`;

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'sign-in-concurrency': { type: 'string' },
    database: { type: 'string' },
    out: { type: 'string' },
    smoke: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`bench: --${name} must be a positive number`);
    process.exit(2);
  }
  return value;
}

const cores = os.availableParallelism();
const smoke = values.smoke === true;
const duration = positive('duration', values.duration, smoke ? 1 : 10);
const warmup = positive('warmup', values.warmup, smoke ? 0.5 : 3);
const connections = Math.round(positive('connections', values.connections, smoke ? 4 : 16));
const signInConcurrency = Math.round(positive('sign-in-concurrency', values['sign-in-concurrency'], 2 * cores));
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
const databaseUrl = values.database ?? process.env.DATABASE_URL ?? path.join(workDir, 'bench.sqlite');
const secret = crypto.randomBytes(32).toString('base64url');
const PASSWORD = 'a benchmark passphrase of some length';
const API = 'https://bench.api.example';

interface Figure {
  scenario: string;
  perSecond: number;
  perSecondPerCore: number;
  p50: number;
  p99: number;
  peakRssMb: number;
  errors: number;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function admin(...argv: string[]): Promise<string> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d));
  stderr.on('data', (d: Buffer) => (err += d));
  const stdin = argv.includes('--password-stdin') ? PASSWORD : '';
  const code = await runAdmin(argv, { stdin: Readable.from([Buffer.from(stdin)]), stdout, stderr, env: { DATABASE_URL: databaseUrl, LATCHKEY_SECRET: secret } });
  if (code !== 0) throw new Error(`admin ${argv.join(' ')}: ${err}`);
  return out;
}

function rssMb(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Samples a process's resident memory while work runs; returns the work's result and the peak. */
async function withPeakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, rssMb(pid)) };
  } finally {
    clearInterval(timer);
  }
}

async function startProcess(args: string[], env: Record<string, string>, ready: (line: string) => boolean): Promise<{ child: ChildProcess; line: string }> {
  // NODE_OPTIONS passes through, so runtime flags can be measured too.
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${stderr}`)));
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (ready(line)) {
          clearTimeout(timer);
          resolve({ child, line });
          return;
        }
      }
    });
  });
}

function figure(scenario: string, result: AutocannonResult, peak: number): Figure {
  const perSecond = result.requests.total / result.duration;
  return {
    scenario,
    perSecond,
    perSecondPerCore: perSecond / cores,
    p50: result.latency.p50,
    p99: result.latency.p99,
    peakRssMb: peak,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

async function measure(url: string, options: Omit<Parameters<typeof runAutocannon>[0], 'url' | 'duration' | 'connections'>, conns = connections) {
  if (warmup > 0) await runAutocannon({ url, duration: warmup, connections: conns, ...options });
  return runAutocannon({ url, duration, connections: conns, ...options });
}

const basic = (id: string, secretValue: string) => `Basic ${Buffer.from(`${id}:${secretValue}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded' };

interface LoopResult {
  count: number;
  errors: number;
  latencies: number[];
}

/**
 * `concurrency` loops, each doing one operation after another for the duration (after a
 * warm-up whose results are dropped). For flows autocannon cannot express: each refresh needs
 * the refresh token the previous one returned, and a sign-in is several requests.
 */
async function runLoops(concurrency: number, operation: (worker: number) => Promise<void>): Promise<LoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  const measureFrom = Date.now() + warmup * 1000;
  const until = measureFrom + duration * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < until) {
        const started = performance.now();
        try {
          await operation(worker);
          if (Date.now() >= measureFrom) latencies.push(performance.now() - started);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { count: latencies.length, errors, latencies: latencies.sort((a, b) => a - b) };
}

function loopFigure(scenario: string, result: LoopResult, peak: number): Figure {
  const pick = (q: number) => result.latencies[Math.min(result.latencies.length - 1, Math.floor(q * result.latencies.length))] ?? 0;
  const perSecond = result.count / duration;
  return { scenario, perSecond, perSecondPerCore: perSecond / cores, p50: pick(0.5), p99: pick(0.99), peakRssMb: peak, errors: result.errors };
}

/** Refreshes one chain per worker: each refresh token is used once, as rotation requires. */
function refreshChains(issuer: string, authorization: string, chains: string[]) {
  return async (worker: number) => {
    const response = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { ...form, authorization },
      body: `grant_type=refresh_token&refresh_token=${chains[worker]}`,
    });
    const body = (await response.json()) as { refresh_token?: string };
    if (response.status !== 200 || !body.refresh_token) throw new Error(`refresh answered ${response.status}`);
    chains[worker] = body.refresh_token;
  };
}

async function main() {
  const figures: Figure[] = [];
  const notes: string[] = [];

  // --- setup, through the admin script on the same database
  await admin('db', 'migrate');
  await admin('api', 'create', '--identifier', API, '--name', 'Bench', '--scope', 'bench:read');
  await admin('role', 'create', 'bench');
  await admin('role', 'grant', 'bench', '--api', API, '--permission', 'bench:read');
  await admin('user', 'create', '--email', 'bench@example.com', '--role', 'bench', '--password-stdin');
  const service = JSON.parse(await admin('client', 'create', '--service', '--name', 'bench-service', '--scope', 'bench:read', '--json')) as { clientId: string; clientSecret: string };
  const appClient = JSON.parse(await admin('client', 'create', '--name', 'bench-app', '--redirect-uri', 'http://127.0.0.1:1/cb', '--json')) as { clientId: string; clientSecret: string };

  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { child: latchkey } = await startProcess(
    ['src/main.ts'],
    { PORT: String(port), HOST: '127.0.0.1', ISSUER: issuer, DATABASE_URL: databaseUrl, LATCHKEY_SECRET: secret, NODE_ENV: 'production' },
    (line) => line.includes('"event":"listening"'),
  );
  const pid = latchkey.pid!;
  const app: App = { issuer, clientId: appClient.clientId, clientSecret: appClient.clientSecret, redirectUri: 'http://127.0.0.1:1/cb' };
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = rssMb(pid);

    // --- client_credentials: a JWT for an API
    const cc = await withPeakRss(pid, () =>
      measure(`${issuer}/token`, { method: 'POST', headers: { ...form, authorization: basic(service.clientId, service.clientSecret) }, body: `grant_type=client_credentials&resource=${encodeURIComponent(API)}&scope=bench%3Aread` }),
    );
    figures.push(figure('client_credentials (JWT, RS256)', cc.result, cc.peak));

    // --- refresh_token with rotation: one chain per connection, started by real sign-ins
    const chains: string[] = [];
    for (let i = 0; i < connections; i++) chains.push((await signIn(app, 'bench@example.com', PASSWORD, 'openid offline_access')).refresh_token!);
    const rt = await withPeakRss(pid, () => runLoops(connections, refreshChains(issuer, basic(app.clientId, app.clientSecret), chains)));
    figures.push(loopFigure('refresh_token (rotation, RS256 ID token)', rt.result, rt.peak));

    // --- userinfo, introspection, JWKS
    const tokens = await signIn(app, 'bench@example.com', PASSWORD, 'openid email');
    const ui = await withPeakRss(pid, () => measure(`${issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }));
    figures.push(figure('userinfo', ui.result, ui.peak));
    const intro = await withPeakRss(pid, () =>
      measure(`${issuer}/token/introspection`, { method: 'POST', headers: { ...form, authorization: basic(app.clientId, app.clientSecret) }, body: `token=${tokens.access_token}` }),
    );
    figures.push(figure('introspection', intro.result, intro.peak));
    const jwks = await withPeakRss(pid, () => measure(`${issuer}/jwks`, {}));
    figures.push(figure('jwks', jwks.result, jwks.peak));

    // --- complete password sign-ins, saturating the CPU
    const signIns = await withPeakRss(pid, () => runLoops(signInConcurrency, () => signIn(app, 'bench@example.com', PASSWORD).then(() => undefined)));
    figures.push(loopFigure('password sign-in (complete)', signIns.result, signIns.peak));
    const signInRate = signIns.result.count / duration;

    // --- what argon2id alone allows on this machine, at the default parameters
    const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    let verified = 0;
    const argonUntil = Date.now() + duration * 1000;
    await Promise.all(
      Array.from({ length: signInConcurrency }, async () => {
        while (Date.now() < argonUntil) {
          await argon2.verify(hash, PASSWORD);
          verified++;
        }
      }),
    );
    const argonRate = verified / duration;
    figures.push({ scenario: 'argon2id verify alone (ceiling for sign-ins)', perSecond: argonRate, perSecondPerCore: argonRate / cores, p50: 0, p99: 0, peakRssMb: 0, errors: 0 });
    notes.push(`Sign-ins reach ${((signInRate / argonRate) * 100).toFixed(0)} % of what argon2id alone allows (target ≥ 90 %).`);
    notes.push(`Idle RSS ${idleRss.toFixed(0)} MB (target ≤ 110); peak under load ${Math.max(...figures.map((f) => f.peakRssMb)).toFixed(0)} MB (target ≤ 250).`);
    figures.push({ scenario: 'idle RSS', perSecond: 0, perSecondPerCore: 0, p50: 0, p99: 0, peakRssMb: idleRss, errors: 0 });
  } finally {
    latchkey.kill('SIGTERM');
  }

  // --- the ceiling: bare oidc-provider, in-memory, same key type
  const { child: bare, line } = await startProcess(['scripts/bench/bare-provider.ts', String(connections)], {}, (l) => l.startsWith('{'));
  try {
    const info = JSON.parse(line) as { issuer: string; clientId: string; clientSecret: string; refreshTokens: string[] };
    const bareCc = await withPeakRss(bare.pid!, () =>
      measure(`${info.issuer}/token`, { method: 'POST', headers: { ...form, authorization: basic(info.clientId, info.clientSecret) }, body: `grant_type=client_credentials&resource=${encodeURIComponent('https://bench.api')}&scope=bench%3Aread` }),
    );
    figures.push(figure('bare oidc-provider client_credentials (JWT, RS256)', bareCc.result, bareCc.peak));
    const bareRt = await withPeakRss(bare.pid!, () => runLoops(connections, refreshChains(info.issuer, basic(info.clientId, info.clientSecret), info.refreshTokens)));
    figures.push(loopFigure('bare oidc-provider refresh_token (rotation)', bareRt.result, bareRt.peak));
    const ours = figures.find((f) => f.scenario.startsWith('client_credentials'))!;
    const theirs = figures.find((f) => f.scenario.startsWith('bare oidc-provider client_credentials'))!;
    notes.push(`client_credentials reaches ${((ours.perSecond / theirs.perSecond) * 100).toFixed(0)} % of bare oidc-provider (target ≥ 80 %).`);
  } finally {
    bare.kill('SIGTERM');
  }

  report(figures, notes);
}

function report(figures: Figure[], notes: string[]) {
  const machine = `${cores} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${databaseUrl.startsWith('postgres') ? 'PostgreSQL' : 'SQLite'}, ${duration}s per scenario after ${warmup}s warm-up, ${connections} connections, ${signInConcurrency} concurrent sign-ins`;
  const rows = figures.map((f) =>
    f.scenario === 'idle RSS'
      ? `| ${f.scenario} | | | | | ${f.peakRssMb.toFixed(0)} | |`
      : `| ${f.scenario} | ${f.perSecond.toFixed(0)} | ${f.perSecondPerCore.toFixed(0)} | ${f.p50 ? f.p50.toFixed(1) : ''} | ${f.p99 ? f.p99.toFixed(1) : ''} | ${f.peakRssMb ? f.peakRssMb.toFixed(0) : ''} | ${f.errors} |`,
  );
  const markdown = [
    `Measured on ${machine}.`,
    '',
    '| scenario | per second | per second per core | p50 ms | p99 ms | peak RSS MB | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  console.log(markdown);
  if (values.out) {
    fs.mkdirSync(values.out, { recursive: true });
    fs.writeFileSync(path.join(values.out, 'bench.json'), JSON.stringify({ machine: { cores, cpu: os.cpus()[0]?.model, node: process.version }, duration, warmup, connections, signInConcurrency, figures, notes }, null, 2));
    fs.writeFileSync(path.join(values.out, 'bench.md'), `${markdown}\n`);
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(workDir, { recursive: true, force: true });
}
