// Measures Latchkey's hot paths on loopback, against a fresh database, and bare oidc-provider's
// ceiling in the same run. `npm run bench -- --help` for the options.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createPasswordHasher } from '../src/accounts/passwords.ts';
import { runAdmin } from '../src/admin/cli.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { isPostgresUrl } from '../src/db/database.ts';
import { runAutocannon } from './bench/autocannon.ts';
import { holdsTables } from './bench/empty-database.ts';
import { signIn, type App } from './bench/sign-in.ts';
import { alternate, type Measured } from './bench/slices.ts';
import { startArguments, startCommand } from './start-command.ts';
import { freePort } from './free-port.ts';

const SCENARIOS = ['client-credentials', 'refresh', 'userinfo', 'introspection', 'jwks', 'sign-in', 'bare'] as const;
type Scenario = (typeof SCENARIOS)[number];

const HELP = `Usage: npm run bench -- [options]

  --duration SECONDS     measuring time per scenario (default 10)
  --warmup SECONDS       warm-up before each measurement (default 3)
  --connections N        concurrent connections for the HTTP scenarios (default 16)
  --sign-in-concurrency N  concurrent password sign-ins (default 2 x cores)
  --database PATH|URL    an empty database of its own: SQLite file or postgres:// URL
                         (default: DATABASE_URL, else a fresh temp SQLite file)
  --only LIST            run only these scenarios, comma-separated:
                         ${SCENARIOS.join(', ')}
  --out DIR              also write bench.json and bench.md there
  --smoke                one-second runs, to check the benchmark itself works`;

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        'sign-in-concurrency': { type: 'string' },
        database: { type: 'string' },
        out: { type: 'string' },
        only: { type: 'string' },
        smoke: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // A mistyped option is the user's slip, not the benchmark's failure: one line, no stack.
    if (!String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_')) throw err;
    console.error(`bench: ${(err as Error).message.split('\n').join(' ').replace(/\.$/, '')}; see --help`);
    process.exit(2);
  }
})();
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

/** Connections and concurrent sign-ins are counted: a fraction would be rounded to what was not asked. */
function count(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`bench: --${name} must be a whole number of at least 1`);
    process.exit(2);
  }
  return value;
}

const only = new Set((values.only ?? SCENARIOS.join(',')).split(',').map((name) => name.trim()));
for (const name of only) {
  if (!(SCENARIOS as readonly string[]).includes(name)) {
    console.error(`bench: --only knows ${SCENARIOS.join(', ')}, not ${JSON.stringify(name)}`);
    process.exit(2);
  }
}
const runs = (scenario: Scenario) => only.has(scenario);

const cores = os.availableParallelism();
// An empty database setting asks for none, so a fresh file: it would otherwise mean the default
// file under db/, a developer's own database.
const databaseOption = values.database !== undefined ? '--database' : 'DATABASE_URL';
const chosenDatabase = (values.database !== undefined ? values.database : process.env.DATABASE_URL) || undefined;
// The servers' settings (defaults, but for a thread pool size passed on to them), and their
// thread pool's size for this process's own too, set before the pool first runs, as
// src/main.ts does: the argon2id-alone ceiling runs as many hashes at once as they do. The
// database asked for is checked here too, under the name it was given by, rather than by the
// admin script halfway through setting up.
const serverSettings = (() => {
  try {
    // Only the thread pool size is used from these settings: the servers get the benchmark's own
    // choice of database (databaseUrl below).
    return loadConfig({ UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE, DATABASE_URL: chosenDatabase });
  } catch (err) {
    const message = err instanceof ConfigError && err.variable === 'DATABASE_URL' ? err.message.replace('DATABASE_URL', databaseOption) : (err as Error).message;
    console.error(`bench: ${message}`);
    process.exit(2);
  }
})();
process.env.UV_THREADPOOL_SIZE = String(serverSettings.threadPoolSize);
const smoke = values.smoke === true;
const duration = positive('duration', values.duration, smoke ? 1 : 10);
const warmup = positive('warmup', values.warmup, smoke ? 0.5 : 3);
const connections = count('connections', values.connections, smoke ? 4 : 16);
const signInConcurrency = count('sign-in-concurrency', values['sign-in-concurrency'], 2 * cores);
// Latchkey and bare oidc-provider take turns within a scenario they share, so that a machine
// whose speed drifts meets both alike. A slice is at least two seconds: autocannon counts in
// one-second ticks, and each slice opens its connections anew. Their number is even, so that
// each server goes first in as many rounds as the other.
const fittingSlices = Math.min(4, Math.floor(duration / 2));
const slices = fittingSlices >= 2 ? fittingSlices - (fittingSlices % 2) : 1;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
const databaseUrl = chosenDatabase ?? path.join(workDir, 'bench.sqlite');
const secret = crypto.randomBytes(32).toString('base64url');
const PASSWORD = 'a benchmark passphrase of some length';
const API = 'https://bench.api.example';
const API_ES256 = 'https://bench-es256.api.example';

interface Figure {
  scenario: string;
  perSecond: number;
  /** Seconds of CPU the server used per second of measurement (all its threads). */
  serverCores: number;
  /** perSecond / serverCores: what one core of the server does, whatever the load generator took. */
  perServerCore: number;
  p50: number;
  p99: number;
  /** p99 with the load held at 80 % of the measured peak rate. */
  p99At80: number | null;
  peakRssMb: number;
  errors: number;
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

// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every common platform.
const TICKS_PER_SECOND = 100;

/** CPU seconds a process has used so far, user and system, all threads. */
function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Samples processes' resident memory while work runs; returns the work's result and each one's peak. */
async function withPeaksRss<T>(pids: number[], work: () => Promise<T>): Promise<{ result: T; peaks: number[] }> {
  const peaks = pids.map(rssMb);
  const sample = () => pids.forEach((pid, index) => (peaks[index] = Math.max(peaks[index]!, rssMb(pid))));
  const timer = setInterval(sample, 100);
  try {
    const result = await work();
    sample();
    return { result, peaks };
  } finally {
    clearInterval(timer);
  }
}

async function withPeakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const { result, peaks } = await withPeaksRss([pid], work);
  return { result, peak: peaks[0]! };
}

// Node's flags, the size of libuv's thread pool, and glibc's malloc settings.
const RUNTIME_SETTINGS = ['NODE_OPTIONS', 'UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'GLIBC_TUNABLES'];

async function startProcess(args: string[], env: Record<string, string>, ready: (line: string) => boolean): Promise<{ child: ChildProcess; line: string }> {
  // Runtime settings pass through, so their effect can be measured too; where they are not
  // set, the start script's defaults apply, as they do to npm start.
  const runtime = Object.fromEntries(RUNTIME_SETTINGS.filter((name) => process.env[name]).map((name) => [name, process.env[name]!]));
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...startCommand().defaults, ...runtime, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const keepStderr = (d: Buffer) => (stderr += d);
  child.stderr!.on('data', keepStderr);
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start: ${stderr}`));
    }, 30_000);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${stderr}`)));
    const readLines = (d: Buffer) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (ready(line)) {
          clearTimeout(timer);
          // From here on its lines are drained unread: the load generator shares the machine,
          // and splitting a line per request would take from it.
          child.stdout!.off('data', readLines);
          child.stdout!.resume();
          // What it says on stderr after that (a crash, a warning) is passed on as it comes,
          // not kept for the whole run.
          child.stderr!.off('data', keepStderr);
          child.stderr!.pipe(process.stderr, { end: false });
          resolve({ child, line });
          return;
        }
      }
    };
    child.stdout!.on('data', readLines);
  });
}

function toFigure(scenario: string, measured: Measured, peak: number, p99At80: number | null): Figure {
  const perSecond = measured.count / measured.seconds;
  const serverCores = measured.cpu / measured.seconds;
  return { scenario, perSecond, serverCores, perServerCore: perSecond / serverCores, p50: measured.p50, p99: measured.p99, p99At80, peakRssMb: peak, errors: measured.errors };
}

type HttpLoad = Omit<Parameters<typeof runAutocannon>[0], 'url' | 'duration' | 'connections'> & { url: string };

async function warmUpHttp(load: HttpLoad): Promise<void> {
  await runAutocannon({ duration: warmup, connections, ...load });
}

/** autocannon for `seconds`, with the server's CPU time over them. */
async function measureHttp(pid: number, load: HttpLoad, seconds: number, rate?: number): Promise<Measured> {
  const cpu = cpuSeconds(pid);
  const result = await runAutocannon({ duration: seconds, connections, ...load, ...(rate ? { overallRate: Math.max(1, Math.round(rate)) } : {}) });
  return {
    count: result.requests.total,
    seconds: result.duration,
    cpu: cpuSeconds(pid) - cpu,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/** One server's side of an HTTP scenario. */
interface HttpSide {
  scenario: string;
  pid: number;
  load: HttpLoad;
}

/** p99 with the load held at 80 % of the peak measured, and the figure of both. */
async function heldHttp(side: HttpSide, peak: { result: Measured; peak: number }): Promise<Figure> {
  const held = await withPeakRss(side.pid, () => measureHttp(side.pid, side.load, duration, (0.8 * peak.result.count) / peak.result.seconds));
  return toFigure(side.scenario, { ...peak.result, errors: peak.result.errors + held.result.errors }, Math.max(peak.peak, held.peak), held.result.p99);
}

/** Peak throughput after a warm-up, then p99 with the load held at 80 % of that peak. */
async function httpScenario(side: HttpSide): Promise<Figure> {
  const peak = await withPeakRss(side.pid, async () => {
    await warmUpHttp(side.load);
    return measureHttp(side.pid, side.load, duration);
  });
  return heldHttp(side, peak);
}

const basic = (id: string, secretValue: string) => `Basic ${Buffer.from(`${id}:${secretValue}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded' };

/** One server's side of a scenario run as loops of operations. */
interface LoopSide {
  scenario: string;
  pid: number;
  concurrency: number;
  operation: (worker: number) => Promise<void>;
  /** Whether p99 is measured again with the load held at 80 % of the peak. */
  holdAt80: boolean;
}

/**
 * `concurrency` loops, each doing one operation after another for `seconds` (after a warm-up
 * whose results are dropped). For flows autocannon cannot express: each refresh needs the
 * refresh token the previous one returned, and a sign-in is several requests. With `rate`,
 * operations start on a schedule of that many per second instead of as fast as they can.
 */
async function runLoops(side: LoopSide, { warmUp, seconds, rate }: { warmUp: number; seconds: number; rate?: number }): Promise<Measured> {
  const { pid, concurrency, operation } = side;
  const latencies: number[] = [];
  let errors = 0;
  const measureFrom = Date.now() + warmUp * 1000;
  const until = measureFrom + seconds * 1000;
  let cpuFrom = cpuSeconds(pid);
  const cpuTimer = setTimeout(() => (cpuFrom = cpuSeconds(pid)), Math.max(0, measureFrom - Date.now()));
  let slot = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < until) {
        if (rate) {
          const startAt = measureFrom + (slot++ * 1000) / rate;
          if (startAt >= until) break;
          const wait = startAt - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
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
  clearTimeout(cpuTimer);
  const cpu = cpuSeconds(pid) - cpuFrom;
  // Operations still running when time is up are awaited and counted, as their CPU time is:
  // the time they took counts too.
  const elapsed = Math.max(seconds, (Date.now() - measureFrom) / 1000);
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { count: latencies.length, seconds: elapsed, cpu, p50: pick(0.5), p99: pick(0.99), errors };
}

async function heldLoops(side: LoopSide, peak: { result: Measured; peak: number }): Promise<Figure> {
  if (!side.holdAt80) return toFigure(side.scenario, peak.result, peak.peak, null);
  const held = await withPeakRss(side.pid, () => runLoops(side, { warmUp: 0, seconds: duration, rate: (0.8 * peak.result.count) / peak.result.seconds }));
  return toFigure(side.scenario, { ...peak.result, errors: peak.result.errors + held.result.errors }, Math.max(peak.peak, held.peak), held.result.p99);
}

async function loopScenario(side: LoopSide): Promise<Figure> {
  return heldLoops(side, await withPeakRss(side.pid, () => runLoops(side, { warmUp: warmup, seconds: duration })));
}

/** How a kind of scenario warms a server up, measures it, and holds it at 80 % load. */
interface Turns<Side> {
  warmUp(side: Side): Promise<unknown>;
  measure(side: Side, seconds: number): Promise<Measured>;
  held(side: Side, peak: { result: Measured; peak: number }): Promise<Figure>;
}

const httpTurns: Turns<HttpSide> = {
  warmUp: (side) => warmUpHttp(side.load),
  measure: (side, seconds) => measureHttp(side.pid, side.load, seconds),
  held: heldHttp,
};

const loopTurns: Turns<LoopSide> = {
  warmUp: (side) => runLoops(side, { warmUp: warmup, seconds: 0 }),
  measure: (side, seconds) => runLoops(side, { warmUp: 0, seconds }),
  held: heldLoops,
};

/** What is measured beside the servers of a scenario, in their turns, without a server of its own. */
interface Beside {
  warmUp(): Promise<unknown>;
  measure(seconds: number): Promise<Measured>;
}

/**
 * The servers of one scenario (Latchkey, bare oidc-provider or both), their peaks measured in
 * alternating slices, and what is measured beside them, if anything, in the same turns.
 */
async function takingTurns<Side extends { pid: number }>(turns: Turns<Side>, sides: Side[], beside?: Beside): Promise<{ figures: Figure[]; beside: Measured | undefined }> {
  const { result, peaks } = await withPeaksRss(
    sides.map((side) => side.pid),
    async () => {
      for (const side of sides) await turns.warmUp(side);
      await beside?.warmUp();
      const parties = sides.map((side) => () => turns.measure(side, duration / slices));
      if (beside) parties.push(() => beside.measure(duration / slices));
      return alternate(slices, ...parties);
    },
  );
  const figures: Figure[] = [];
  for (const [index, side] of sides.entries()) figures.push(await turns.held(side, { result: result[index]!, peak: peaks[index]! }));
  return { figures, beside: beside ? result[sides.length] : undefined };
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

const ARGON = 'argon2id verify alone (ceiling for sign-ins)';
const SIGN_IN = 'password sign-in (complete)';

/**
 * What argon2id alone allows on this machine, in this process, through Latchkey's own password
 * hasher at the default settings: the same parameters, the same number of hashes at once (the
 * sign-ins' concurrency only queues on it) and the same one-off that keeps their memory. It
 * takes its turns beside the sign-ins it is the ceiling of: measured after them, its ratio to
 * them moved by a tenth from run to run with the machine.
 */
function argonVerificationsAlone(): Beside {
  const hasher = createPasswordHasher(serverSettings.argon2);
  let hash: Promise<string> | undefined;
  const verifyOnce = async () => {
    hash ??= hasher.hash(PASSWORD);
    return hasher.verify(await hash, PASSWORD);
  };
  return {
    // One verification in each worker: the pool's threads then hold the hashes' memory.
    warmUp: () => Promise.all(Array.from({ length: signInConcurrency }, verifyOnce)),
    async measure(seconds) {
      let verified = 0;
      const cpuFrom = process.cpuUsage();
      const until = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: signInConcurrency }, async () => {
          while (Date.now() < until) {
            await verifyOnce();
            verified++;
          }
        }),
      );
      const cpu = process.cpuUsage(cpuFrom);
      return { count: verified, seconds, cpu: (cpu.user + cpu.system) / 1e6, p50: 0, p99: 0, errors: 0 };
    },
  };
}
const argonFigure = (measured: Measured) => toFigure(ARGON, measured, 0, null);

const ccBody = (api: string) => `grant_type=client_credentials&resource=${encodeURIComponent(api)}&scope=bench%3Aread`;
// Names bare oidc-provider's figures, which sit beside Latchkey's in the table.
const BARE = 'bare oidc-provider';
const percent = (ours: number, theirs: number) => `${((ours / theirs) * 100).toFixed(0)} %`;

async function main() {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const find = (scenario: string) => figures.find((f) => f.scenario === scenario);

  // The benchmark fills its database with users, apps, APIs and roles of its own and rotates its
  // signing keys: in a database that already holds tables, that would be someone's data.
  let occupied: boolean;
  try {
    occupied = await holdsTables(databaseUrl);
  } catch (err) {
    // Where localhost is both ::1 and 127.0.0.1, refused connections to both come as one
    // AggregateError with no message of its own, only a code.
    const { message, code } = err as NodeJS.ErrnoException;
    throw new Error(`cannot read the database ${databaseOption} names: ${message || code || String(err)}`);
  }
  if (occupied) {
    console.error(`bench: ${databaseOption} names a database that already holds tables; the benchmark needs an empty one of its own, as it creates users, apps and signing keys in it`);
    process.exitCode = 2;
    return;
  }

  // --- setup, through the admin script on the same database
  await admin('db', 'migrate');
  await admin('keys', 'rotate', '--alg', 'ES256', '--lead-time', '0');
  await admin('api', 'create', '--identifier', API, '--name', 'Bench', '--scope', 'bench:read');
  await admin('api', 'create', '--identifier', API_ES256, '--name', 'Bench ES256', '--scope', 'bench:read', '--token-signing-alg', 'ES256');
  await admin('role', 'create', 'bench');
  // Both APIs define bench:read, so the service gets it through a role, which names the API.
  await admin('role', 'grant', 'bench', '--api', API, '--permission', 'bench:read');
  await admin('role', 'grant', 'bench', '--api', API_ES256, '--permission', 'bench:read');
  await admin('user', 'create', '--email', 'bench@example.com', '--role', 'bench', '--password-stdin');
  const service = JSON.parse(await admin('client', 'create', '--service', '--name', 'bench-service', '--json')) as { clientId: string; clientSecret: string };
  await admin('role', 'assign', 'bench', '--client', service.clientId);
  const appClient = JSON.parse(await admin('client', 'create', '--name', 'bench-app', '--redirect-uri', 'http://127.0.0.1:1/cb', '--json')) as { clientId: string; clientSecret: string };

  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const serverEnv = { PORT: String(port), HOST: '127.0.0.1', ISSUER: issuer, DATABASE_URL: databaseUrl, LATCHKEY_SECRET: secret, NODE_ENV: 'production' };
  const listening = (line: string) => line.includes('"event":"listening"');
  // A first start fills the compile cache, as the first `npm start` on a machine does; the
  // figures are of a later start.
  const { child: first } = await startProcess(startArguments(), serverEnv, listening);
  await new Promise((resolve) => first.once('exit', resolve).kill('SIGTERM'));
  const { child: latchkey } = await startProcess(startArguments(), serverEnv, listening);
  const pid = latchkey.pid!;
  const app: App = { issuer, clientId: appClient.clientId, clientSecret: appClient.clientSecret, redirectUri: 'http://127.0.0.1:1/cb' };
  // Bare oidc-provider runs beside Latchkey, and the two take turns in each scenario they
  // share, so that the figures compared meet the machine in the same states: on a shared
  // machine, seconds apart can differ by more than the gap being measured.
  let bare: Awaited<ReturnType<typeof startBare>> | null = null;
  try {
    if (runs('bare')) bare = await startBare();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = rssMb(pid);
    const serviceAuth = { ...form, authorization: basic(service.clientId, service.clientSecret) };

    // Where bare oidc-provider runs the same scenario, the two are measured together.
    const withBare = async <Side extends { pid: number }>(ours: Side | null, theirs: Side | null, single: (side: Side) => Promise<Figure>, turns: Turns<Side>) => {
      if (ours && theirs) figures.push(...(await takingTurns(turns, [ours, theirs])).figures);
      else if (ours ?? theirs) figures.push(await single((ours ?? theirs)!));
    };

    for (const [alg, api] of [['RS256', API], ['ES256', API_ES256]] as const) {
      const ours = runs('client-credentials') ? { scenario: `client_credentials (JWT, ${alg})`, pid, load: { url: `${issuer}/token`, method: 'POST', headers: serviceAuth, body: ccBody(api) } } : null;
      await withBare(ours, bare?.clientCredentials(alg) ?? null, httpScenario, httpTurns);
    }

    // --- refresh_token with rotation: one chain per connection, started by real sign-ins
    let refresh: LoopSide | null = null;
    if (runs('refresh')) {
      const chains: string[] = [];
      for (let i = 0; i < connections; i++) chains.push((await signIn(app, 'bench@example.com', PASSWORD, 'openid offline_access')).refresh_token!);
      refresh = { scenario: 'refresh_token (rotation, RS256 ID token)', pid, concurrency: connections, operation: refreshChains(issuer, basic(app.clientId, app.clientSecret), chains), holdAt80: true };
    }
    await withBare(refresh, bare?.refresh() ?? null, loopScenario, loopTurns);

    // --- userinfo, introspection, JWKS
    const tokens = runs('userinfo') || runs('introspection') ? await signIn(app, 'bench@example.com', PASSWORD, 'openid email') : null;
    if (tokens && runs('userinfo')) figures.push(await httpScenario({ scenario: 'userinfo', pid, load: { url: `${issuer}/me`, headers: { authorization: `Bearer ${tokens.access_token}` } } }));
    if (tokens && runs('introspection')) {
      const load = { url: `${issuer}/token/introspection`, method: 'POST', headers: { ...form, authorization: basic(app.clientId, app.clientSecret) }, body: `token=${tokens.access_token}` };
      figures.push(await httpScenario({ scenario: 'introspection', pid, load }));
    }
    if (runs('jwks')) figures.push(await httpScenario({ scenario: 'jwks', pid, load: { url: `${issuer}/jwks` } }));

    // --- complete password sign-ins, saturating the CPU (latency is argon2id's by design), taking
    // turns with argon2id alone, the ceiling they are read against
    const signIns: LoopSide | null = runs('sign-in') ? { scenario: SIGN_IN, pid, concurrency: signInConcurrency, operation: () => signIn(app, 'bench@example.com', PASSWORD).then(() => undefined), holdAt80: false } : null;
    const signInSides = [signIns, bare?.signIn() ?? null].filter((side): side is LoopSide => side !== null);
    if (signInSides.length > 0) {
      const taken = await takingTurns(loopTurns, signInSides, argonVerificationsAlone());
      const argon = argonFigure(taken.beside!);
      figures.push(...taken.figures, argon);
      const ours = find(SIGN_IN);
      if (ours) {
        notes.push(
          `Sign-ins reach ${percent(ours.perServerCore, argon.perServerCore)} of what argon2id alone allows per core (target ≥ 90 %); ${percent(ours.perSecond, argon.perSecond)} per second with the load generator on the same cores.`,
        );
      }
      const theirs = find(`${BARE} ${SIGN_IN}`);
      if (theirs) notes.push(`Bare oidc-provider's own sign-ins, with one argon2id verification each, reach ${percent(theirs.perServerCore, argon.perServerCore)} of argon2id alone per core.`);
      if (ours && theirs) notes.push(`Sign-ins reach ${percent(ours.perServerCore, theirs.perServerCore)} of bare oidc-provider's per core.`);
    }

    // Latchkey's own figures: bare oidc-provider's are its process's, argon2id alone the benchmark's.
    const loaded = figures.filter((f) => !f.scenario.startsWith(BARE) && f.scenario !== ARGON).map((f) => f.peakRssMb);
    const peak = loaded.length ? `; peak under load ${Math.max(...loaded).toFixed(0)} MB (target ≤ 250)` : '';
    notes.push(`Idle RSS ${idleRss.toFixed(0)} MB (target ≤ 110)${peak}.`);
    figures.push({ scenario: 'idle RSS', perSecond: 0, serverCores: 0, perServerCore: 0, p50: 0, p99: 0, p99At80: null, peakRssMb: idleRss, errors: 0 });
  } finally {
    latchkey.kill('SIGTERM');
    bare?.stop();
  }

  for (const alg of ['RS256', 'ES256']) {
    const ours = find(`client_credentials (JWT, ${alg})`);
    const theirs = find(`${BARE} client_credentials (JWT, ${alg})`);
    if (ours && theirs) notes.push(`client_credentials with ${alg} reaches ${percent(ours.perServerCore, theirs.perServerCore)} of bare oidc-provider per core, ${percent(ours.perSecond, theirs.perSecond)} per second (target ≥ 80 %).`);
  }
  report(figures, notes);
}

/** The ceiling: bare oidc-provider, in-memory, with the same key types, measured beside Latchkey. */
async function startBare() {
  // With the runtime flags of npm start (all but its entry point), so that both run alike.
  const { child, line } = await startProcess([...startArguments().slice(0, -1), 'scripts/bench/bare-provider.ts', String(connections)], { BENCH_PASSWORD: PASSWORD }, (l) => l.startsWith('{'));
  let info: { issuer: string; clientId: string; clientSecret: string; redirectUri: string; apis: Record<string, string>; refreshTokens: string[] };
  try {
    info = JSON.parse(line) as typeof info;
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  const auth = basic(info.clientId, info.clientSecret);
  const pid = child.pid!;
  return {
    clientCredentials: (alg: 'RS256' | 'ES256'): HttpSide => ({
      scenario: `${BARE} client_credentials (JWT, ${alg})`,
      pid,
      load: { url: `${info.issuer}/token`, method: 'POST', headers: { ...form, authorization: auth }, body: ccBody(info.apis[alg]!) },
    }),
    refresh: (): LoopSide => ({ scenario: `${BARE} refresh_token (rotation)`, pid, concurrency: connections, operation: refreshChains(info.issuer, auth, info.refreshTokens), holdAt80: true }),
    signIn: (): LoopSide => ({ scenario: `${BARE} ${SIGN_IN}`, pid, concurrency: signInConcurrency, operation: () => signIn(info, 'bench@example.com', PASSWORD).then(() => undefined), holdAt80: false }),
    stop: () => child.kill('SIGTERM'),
  };
}

function report(figures: Figure[], notes: string[]) {
  const machine = `${cores} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${isPostgresUrl(databaseUrl) ? 'PostgreSQL' : 'SQLite'}, ${duration}s per scenario after ${warmup}s warm-up, ${connections} connections, ${signInConcurrency} concurrent sign-ins`;
  const number = (value: number | null, digits = 0) => (value ? value.toFixed(digits) : '');
  // Rates under 100 (sign-ins) keep a decimal: rounded to whole ones they would move by up to a
  // few per cent, as much as the gaps they are read for.
  const rate = (value: number) => number(value, value < 100 ? 1 : 0);
  const rows = figures.map((f) =>
    f.scenario === 'idle RSS'
      ? `| ${f.scenario} | | | | | | | ${f.peakRssMb.toFixed(0)} | |`
      : `| ${f.scenario} | ${rate(f.perSecond)} | ${number(f.serverCores, 2)} | ${rate(f.perServerCore)} | ${number(f.p50, 1)} | ${number(f.p99, 1)} | ${number(f.p99At80, 1)} | ${number(f.peakRssMb)} | ${f.errors} |`,
  );
  const markdown = [
    `Measured on ${machine}. "Server cores" is the CPU time the server used per second (the load generator had the rest); "per server core" is the rate divided by it.`,
    '',
    '| scenario | per second | server cores | per server core | p50 ms | p99 ms | p99 ms at 80 % load | peak RSS MB | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
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
