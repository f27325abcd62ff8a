import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDialect } from './helpers/database.ts';

// The benchmark in smoke mode, so it cannot rot: it must produce every figure. The figures
// themselves are for `npm run bench` on a quiet machine, not for a test.
describe.skipIf(testDialect !== 'sqlite')('npm run bench', () => {
  it('produces every figure in smoke mode, as a table, JSON and Markdown', { timeout: 150_000 }, () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-out-'));
    const run = spawnSync(process.execPath, ['scripts/bench.ts', '--smoke', '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: process.env.PATH },
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('| scenario | per second |');
    const report = JSON.parse(fs.readFileSync(path.join(out, 'bench.json'), 'utf8')) as {
      machine: { cores: number };
      figures: { scenario: string; perSecond: number; serverCores: number; perServerCore: number; p50: number; p99: number; p99At80: number | null; peakRssMb: number; errors: number }[];
    };
    expect(report.machine.cores).toBeGreaterThan(0);
    const byName = new Map(report.figures.map((f) => [f.scenario, f]));
    for (const scenario of [
      'client_credentials (JWT, RS256)',
      'client_credentials (JWT, ES256)',
      'refresh_token (rotation, RS256 ID token)',
      'userinfo',
      'introspection',
      'jwks',
      'password sign-in (complete)',
      'bare oidc-provider client_credentials (JWT, RS256)',
      'bare oidc-provider client_credentials (JWT, ES256)',
      'bare oidc-provider refresh_token (rotation)',
      'bare oidc-provider password sign-in (complete)',
    ]) {
      const f = byName.get(scenario);
      expect(f, scenario).toBeDefined();
      expect(f!.perSecond, scenario).toBeGreaterThan(0);
      expect(f!.serverCores, scenario).toBeGreaterThan(0);
      expect(f!.perServerCore, scenario).toBeGreaterThan(0);
      // Held at 80 % of peak; sign-in latency is argon2id's by design and is not held.
      if (!scenario.endsWith('password sign-in (complete)')) expect(f!.p99At80, scenario).toEqual(expect.any(Number));
      // Latencies are in whole milliseconds: a fast path may round to 0.
      expect(f!.p99, scenario).toBeGreaterThanOrEqual(f!.p50);
      expect(Number.isFinite(f!.p99), scenario).toBe(true);
      expect(f!.peakRssMb, scenario).toBeGreaterThan(0);
      expect(f!.errors, scenario).toBe(0);
    }
    expect(byName.get('argon2id verify alone (ceiling for sign-ins)')!.perSecond).toBeGreaterThan(0);
    expect(byName.get('idle RSS')!.peakRssMb).toBeGreaterThan(0);
    const markdown = fs.readFileSync(path.join(out, 'bench.md'), 'utf8');
    // Sign-ins are few a second: their rates keep a decimal, or rounding would hide the gaps read from them.
    expect(markdown).toMatch(/\| password sign-in \(complete\) \| \d+\.\d \| [\d.]+ \| \d+\.\d \|/);
    expect(markdown).toContain('client_credentials with RS256 reaches');
    expect(markdown).toContain('client_credentials with ES256 reaches');
    expect(markdown).toMatch(/Sign-ins reach \d+ % of what argon2id alone allows per core/);
    // What the library itself allows a sign-in, so the gap to argon2id alone can be read as ours or its.
    expect(markdown).toMatch(/Bare oidc-provider's own sign-ins, with one argon2id verification each, reach \d+ % of argon2id alone per core/);
    expect(markdown).toMatch(/Sign-ins reach \d+ % of bare oidc-provider's per core/);
    // Each bare oidc-provider figure is measured right after Latchkey's, so both meet the machine alike.
    const order = report.figures.map((f) => f.scenario);
    for (const [ours, theirs] of [
      ['client_credentials (JWT, RS256)', 'bare oidc-provider client_credentials (JWT, RS256)'],
      ['client_credentials (JWT, ES256)', 'bare oidc-provider client_credentials (JWT, ES256)'],
      ['refresh_token (rotation, RS256 ID token)', 'bare oidc-provider refresh_token (rotation)'],
      ['password sign-in (complete)', 'bare oidc-provider password sign-in (complete)'],
    ] as const) {
      expect(order.indexOf(theirs), theirs).toBe(order.indexOf(ours) + 1);
    }
    // Latchkey's peak, not bare oidc-provider's, whose figures sit beside its own.
    const ours = report.figures.filter((f) => !f.scenario.startsWith('bare ') && f.scenario !== 'idle RSS');
    expect(markdown).toContain(`peak under load ${Math.max(...ours.map((f) => f.peakRssMb)).toFixed(0)} MB`);
  });

  it('runs only the scenarios asked for, and refuses a name it does not know', { timeout: 120_000 }, () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-only-'));
    const run = spawnSync(process.execPath, ['scripts/bench.ts', '--smoke', '--only', 'jwks', '--out', out], { encoding: 'utf8', timeout: 50_000, env: { PATH: process.env.PATH } });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'bench.json'), 'utf8')) as { figures: { scenario: string; perSecond: number }[] };
    expect(report.figures.map((f) => f.scenario)).toEqual(['jwks', 'idle RSS']);
    expect(report.figures[0]!.perSecond).toBeGreaterThan(0);

    // Bare oidc-provider alone: its figures, and no peak of Latchkey's under a load it did not have.
    const bareOut = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-bare-'));
    const bare = spawnSync(process.execPath, ['scripts/bench.ts', '--smoke', '--only', 'bare', '--out', bareOut], { encoding: 'utf8', timeout: 50_000, env: { PATH: process.env.PATH } });
    expect(bare.status, bare.stderr).toBe(0);
    const bareReport = JSON.parse(fs.readFileSync(path.join(bareOut, 'bench.json'), 'utf8')) as { figures: { scenario: string }[] };
    expect(bareReport.figures.map((f) => f.scenario)).toEqual([
      'bare oidc-provider client_credentials (JWT, RS256)',
      'bare oidc-provider client_credentials (JWT, ES256)',
      'bare oidc-provider refresh_token (rotation)',
      'bare oidc-provider password sign-in (complete)',
      'argon2id verify alone (ceiling for sign-ins)',
      'idle RSS',
    ]);
    expect(fs.readFileSync(path.join(bareOut, 'bench.md'), 'utf8')).not.toContain('peak under load');

    const refused = spawnSync(process.execPath, ['scripts/bench.ts', '--only', 'jwks,everything'], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--only knows client-credentials, refresh, userinfo, introspection, jwks, sign-in, bare, not "everything"');
  });

  it('refuses a thread pool size the servers would refuse, naming it', () => {
    const run = spawnSync(process.execPath, ['scripts/bench.ts', '--smoke'], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH, UV_THREADPOOL_SIZE: 'many' } });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('bench: UV_THREADPOOL_SIZE: must be a whole number, got "many"\n');
  });
});
