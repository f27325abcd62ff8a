import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseStartScript, startArguments, startCommand } from '../scripts/start-command.ts';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { tempDatabaseFile } from './helpers/server.ts';
import { testDialect } from './helpers/database.ts';
import { registerApp } from './helpers/admin.ts';
import { runAdmin } from '../src/admin/cli.ts';
import { REDIRECT_URI, RelyingParty } from './helpers/relying-party.ts';
import { findForm } from './helpers/browser.ts';
import { runProgram } from './helpers/program.ts';
import { PassThrough, Readable } from 'node:stream';
import { freePort } from '../scripts/free-port.ts';

function startWith(env: Record<string, string>) {
  return spawnSync(process.execPath, ['src/main.ts'], {
    env: { PATH: process.env.PATH, DATABASE_URL: tempDatabaseFile(), ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

/** Starts `node src/main.ts` and resolves once it logs that it listens. */
async function spawnLatchkey(env: Record<string, string>) {
  const child = spawn(process.execPath, ['src/main.ts'], { env: { PATH: process.env.PATH, HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  // 'close', not 'exit': what the process wrote last is read by then.
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start: ${stderr}`)), 20_000);
    child.stdout.on('data', () => {
      if (stdout.includes('"event":"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, exited, output: () => stdout, errors: () => stderr };
}

// These start real processes on SQLite files; once per suite run is enough.
describe.skipIf(testDialect !== 'sqlite')('start-up', () => {
  it.each([
    ['ISSUER', 'not-a-url', /ISSUER: must be an absolute http\(s\) URL/],
    ['ISSUER', 'ftp://example.com', /ISSUER: must use https/],
    ['ISSUER', 'https://example.com/?tenant=1', /ISSUER: must not contain a query/],
    ['PORT', 'abc', /PORT: must be a whole number, got "abc"/],
    ['PORT', '70000', /PORT: must be between 0 and 65535/],
    ['DATABASE_URL', 'mysql://localhost/db', /DATABASE_URL: must be a SQLite file path or a postgres:\/\/ URL/],
    ['ARGON2_MEMORY_KIB', '1024', /ARGON2_MEMORY_KIB: must be between 8192/],
    ['ARGON2_MAX_CONCURRENT', '0', /ARGON2_MAX_CONCURRENT: must be between 1/],
    ['UV_THREADPOOL_SIZE', 'many', /UV_THREADPOOL_SIZE: must be a whole number/],
    ['LOG_BUFFER_BYTES', '100', /LOG_BUFFER_BYTES: must be between 4096/],
    ['TRUST_PROXY', 'maybe', /TRUST_PROXY: must be true or false/],
  ])('refuses %s=%s with one line naming it', (name, value, message) => {
    const result = startWith({ [name]: value });
    expect(result.status).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('starts with the compile cache on, so later starts skip the TypeScript stripper', () => {
    const args = startArguments();
    expect(args.at(-1)).toBe('src/main.ts');
    // The start script's runtime flags and preloads, with a probe in place of the entry point.
    const probe = spawnSync(process.execPath, [...args.slice(0, -1), '--input-type=module', '-e', "import m from 'node:module'; console.log(m.getCompileCacheDir())"], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    });
    expect(probe.status, probe.stderr).toBe(0);
    // Node adds a subdirectory per Node version.
    expect(path.dirname(probe.stdout.trim())).toBe(path.resolve('node_modules/.cache/latchkey'));
  });

  it('serves from SQLite without loading the PostgreSQL driver', () => {
    const result = runProgram([
      "import { createRequire } from 'node:module';",
      "const { openDatabase } = await import('./src/db/database.ts');",
      "const { migrateToLatest } = await import('./src/db/migrate.ts');",
      "const { createServer } = await import('./src/server.ts');",
      "const { loadConfig } = await import('./src/config.ts');",
      `const database = openDatabase(${JSON.stringify(tempDatabaseFile())});`,
      'await migrateToLatest(database.db);',
      "const server = await createServer({ config: loadConfig({ LATCHKEY_SECRET: 'x'.repeat(32) }), db: database.db, log: () => {} });",
      'server.stop();',
      'await database.close();',
      "console.log(Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes('/node_modules/pg/')).length);",
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('0');
  });

  it.each([
    ['gives glibc one malloc arena', {}, '1'],
    ['leaves a value set in the environment alone', { MALLOC_ARENA_MAX: '4' }, '4'],
  ])('npm start %s', (_title, env: Record<string, string>, expected) => {
    // The start script itself, run by a shell as npm runs it, with a probe as the entry point.
    const script = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start;
    const probe = script.replace(/ src\/main\.ts$/, ` -e "console.log(process.env.MALLOC_ARENA_MAX)"`);
    expect(probe).not.toBe(script);
    const result = spawnSync('sh', ['-c', probe], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(expected);
    expect(startCommand().defaults).toEqual({ MALLOC_ARENA_MAX: '1' });
  });

  it('reads the start script as defaults and node arguments, and refuses any other shape', () => {
    expect(parseStartScript('A_B=${A_B:-1} node --flag src/main.ts')).toEqual({ defaults: { A_B: '1' }, args: ['--flag', 'src/main.ts'] });
    // A plain assignment would override what the environment says.
    expect(() => parseStartScript('A_B=1 node src/main.ts')).toThrow('the start script may set variables only as NAME=${NAME:-value}');
    expect(() => parseStartScript('A_B=${OTHER:-1} node src/main.ts')).toThrow('NAME=${NAME:-value}');
    expect(() => parseStartScript('tsx src/main.ts')).toThrow('the start script must run node, not tsx');
  });

  it('refuses an http issuer in production unless it is localhost', () => {
    const secret = 'a production key-encryption secret of 32+';
    expect(() => loadConfig({ NODE_ENV: 'production', LATCHKEY_SECRET: secret, ISSUER: 'http://id.example.com' })).toThrow(/ISSUER: must use https in production/);
    expect(loadConfig({ NODE_ENV: 'production', LATCHKEY_SECRET: secret, ISSUER: 'http://localhost:3000' }).issuer).toBe('http://localhost:3000');
  });

  it('refuses to start in production without a key-encryption secret, and says why', () => {
    const result = startWith({ NODE_ENV: 'production', ISSUER: 'https://id.example.com' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/LATCHKEY_SECRET: is required in production/);
    expect(() => loadConfig({ LATCHKEY_SECRET: 'too short' })).toThrow(/LATCHKEY_SECRET: must be at least 32 characters/);
    expect(() => loadConfig({ LATCHKEY_SECRET_FILE: '/nonexistent/secret' })).toThrow(/LATCHKEY_SECRET_FILE: cannot read \/nonexistent\/secret \(ENOENT\)/);
  });

  it('validates the branding settings', () => {
    expect(() => loadConfig({ BRAND_PRIMARY_COLOR: 'red; background: url(x)' })).toThrow(/BRAND_PRIMARY_COLOR: must be a colour like #1f5fbf/);
    expect(() => loadConfig({ BRAND_LOGO_URL: 'http://cdn.example.com/logo.png' })).toThrow(/BRAND_LOGO_URL: must be an https URL/);
    expect(() => loadConfig({ BRAND_LOGO_URL: 'javascript:alert(1)' })).toThrow(/BRAND_LOGO_URL/);
    expect(() => loadConfig({ SUPPORT_URL: 'javascript:alert(1)' })).toThrow(/SUPPORT_URL: must be an http\(s\) or mailto: URL/);
    expect(loadConfig({ PRODUCT_NAME: 'Acme ID', BRAND_PRIMARY_COLOR: '#aa0000', SUPPORT_URL: 'mailto:help@acme.example' }).branding).toMatchObject({
      productName: 'Acme ID',
      primaryColor: '#aa0000',
      supportUrl: 'mailto:help@acme.example',
    });
  });

  it('defaults to port 3000, a SQLite file under db/ and the OWASP argon2id minimum', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      issuer: 'http://localhost:3000',
      databaseUrl: 'db/latchkey.sqlite',
      // One hash per core, in a pool of one thread per core and one more for token signing.
      argon2: { memoryKiB: 19456, timeCost: 2, parallelism: 1, maxConcurrent: os.availableParallelism() },
      threadPoolSize: os.availableParallelism() + 1,
    });
    // A pool set larger lets more hashes run at once, still one per core at most.
    expect(loadConfig({ UV_THREADPOOL_SIZE: '64' }).argon2.maxConcurrent).toBe(Math.min(os.availableParallelism(), 63));
    expect(loadConfig({ UV_THREADPOOL_SIZE: '1' }).argon2.maxConcurrent).toBe(1);
    expect(loadConfig({ UV_THREADPOOL_SIZE: '3' }).threadPoolSize).toBe(3);
    expect(() => loadConfig({ UV_THREADPOOL_SIZE: '0' })).toThrow(/UV_THREADPOOL_SIZE/);
  });

  it('says which port is taken instead of printing a stack', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    const result = startWith({ PORT: String(port), HOST: '127.0.0.1' });
    blocker.close();
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toMatch(/^latchkey: could not start: .*EADDRINUSE/);
  });

  it('starts, serves discovery and metrics on their own port, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const { child, exited } = await spawnLatchkey({ DATABASE_URL: tempDatabaseFile(), PORT: String(port), METRICS_PORT: String(metricsPort) });
    const discovery = (await (await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(`http://localhost:${port}`);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/latchkey_http_requests_total\{route="discovery",method="GET",status="200"\} 1/);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it("builds oidc-provider's English lists without ICU's locale data, and words its errors the same", async () => {
    // Counts Intl's own list formatters, from before anything of Latchkey's is imported.
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-intl-'));
    const counter = path.join(folder, 'count-list-formats.mjs');
    fs.writeFileSync(
      counter,
      [
        'let built = 0;',
        "Object.defineProperty(Intl, 'ListFormat', { value: new Proxy(Intl.ListFormat, { construct(target, args, newTarget) { built++; return Reflect.construct(target, args, newTarget); } }) });",
        "process.on('exit', () => process.stderr.write(`ICU list formatters: ${built}\\n`));",
      ].join('\n'),
    );
    try {
      const port = await freePort();
      const { child, exited, errors } = await spawnLatchkey({ DATABASE_URL: tempDatabaseFile(), PORT: String(port), NODE_OPTIONS: `--import=${pathToFileURL(counter).href}` });
      const page = await (await fetch(`http://127.0.0.1:${port}/auth?client_id=a&client_id=b&scope=openid&scope=x&state=1&state=2`)).text();
      expect(page).toContain('&#39;client_id&#39;, &#39;scope&#39;, and &#39;state&#39; parameters must not be provided twice');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(errors()).toContain('ICU list formatters: 0');
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('wakes its main thread a few times a second at rest, not a hundred', async () => {
    const { child, exited } = await spawnLatchkey({ DATABASE_URL: tempDatabaseFile(), PORT: String(await freePort()) });
    // Times the thread went to sleep and was woken, from the kernel's count for it.
    const wakeUps = () => Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/status`, 'utf8'))![1]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = wakeUps();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const perSecond = (wakeUps() - before) / 3;
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(perSecond).toBeLessThan(30);
  });

  it('keeps serving when stdout stops taking logs, holds only LOG_BUFFER_BYTES of them, and says how many it dropped', async () => {
    const port = await freePort();
    const { child, exited, output } = await spawnLatchkey({ DATABASE_URL: tempDatabaseFile(), PORT: String(port), LOG_BUFFER_BYTES: '8192' });
    // Whatever reads stdout stops taking lines: the pipe fills.
    child.stdout.pause();
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 250; i++) statuses.push((await fetch(`http://127.0.0.1:${port}/healthz`)).status);
      }),
    );
    // 2,000 request lines (well over the pipe's 64 KiB and the 8 KiB held) were all answered.
    expect(statuses.filter((s) => s === 200)).toHaveLength(2000);
    child.stdout.resume();
    // Then takes them again: everything held comes out, with the count of what was not.
    let seen = -1;
    for (let waited = 0; waited < 10_000 && (seen !== output().length || !output().includes('log_lines_dropped')); waited += 250) {
      seen = output().length;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const lines = output().trim().split('\n').map((l) => JSON.parse(l) as { event?: string; path?: string; count?: number });
    const dropped = lines.filter((l) => l.event === 'log_lines_dropped').reduce((sum, l) => sum + l.count!, 0);
    expect(dropped).toBeGreaterThan(0);
    // Whole lines are dropped, never parts of one (every line above parsed), and all are counted.
    expect(lines.filter((l) => l.path === '/healthz').length + dropped).toBe(2000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('finishes a request in flight on SIGTERM, refuses new connections, then exits', async () => {
    const file = tempDatabaseFile();
    // A slow password hash keeps the sign-in request in flight while the signal arrives.
    const slow = { ARGON2_TIME_COST: '40' };
    const app = await registerApp(file, REDIRECT_URI);
    const stdout = new PassThrough();
    const created = await runAdmin(['user', 'create', '--email', 'slow@example.com', '--password-stdin'], {
      stdin: Readable.from([Buffer.from('correct horse battery staple\n')]),
      stdout,
      stderr: new PassThrough(),
      env: { DATABASE_URL: file, ...slow },
    });
    expect(created).toBe(0);
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const { child, exited, output } = await spawnLatchkey({ DATABASE_URL: file, PORT: String(port), ISSUER: issuer, ...slow });

    const rp = await RelyingParty.discover(issuer, app.clientId, app.clientSecret);
    const browser = rp.newBrowser();
    const login = await browser.page((await rp.authorizationRequest()).url);
    const form = findForm(login, /\/login$/);
    const target = new URL(form.action, login.url);
    const inFlight = fetch(target, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.cookieHeader(target), connection: 'close' },
      body: new URLSearchParams({ ...form.fields, email: 'slow@example.com', password: 'correct horse battery staple' }),
    }).then((response) => ({ response, answeredAt: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 150));
    // The hash runs in Node's pool, sized one thread per core plus one unless UV_THREADPOOL_SIZE says otherwise.
    const threads = fs.readdirSync(`/proc/${child.pid}/task`).map((task) => fs.readFileSync(`/proc/${child.pid}/task/${task}/comm`, 'utf8').trim());
    expect(threads.filter((name) => name.startsWith('libuv-worker'))).toHaveLength(os.availableParallelism() + 1);
    child.kill('SIGTERM');
    const signalledAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(fetch(`${issuer}/healthz`, { headers: { connection: 'close' } })).rejects.toThrow();

    const { response, answeredAt } = await inFlight;
    expect(answeredAt).toBeGreaterThan(signalledAt);
    expect(response.status).toBe(303);
    expect(await exited).toBe(0);
    expect(output()).toContain('"event":"stopped"');
  });

  it('stops npm install on a Node older than 22.18, naming the version needed', () => {
    const result = spawnSync(
      process.execPath,
      ['-e', "Object.defineProperty(process.versions, 'node', { value: '20.19.0' }); require('./scripts/check-node.js')"],
      { encoding: 'utf8' },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/needs Node\.js >= 22\.18/);
    expect(spawnSync(process.execPath, ['scripts/check-node.js']).status).toBe(0);
  });
});
