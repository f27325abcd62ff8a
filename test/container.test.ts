import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testDialect } from './helpers/database.ts';
import { startArguments, startCommand } from '../scripts/start-command.ts';

const dockerfile = fs.readFileSync('docker/Dockerfile', 'utf8');

/** `docker compose` (v2 plugin) or `docker-compose` (v1), whichever this machine has. */
function composeCommand(): string[] | null {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(command[0]!, [...command.slice(1), 'version'], { encoding: 'utf8' });
    if (probe.status === 0) return command;
  }
  return null;
}

const compose = composeCommand();
if (!compose) console.warn('No docker compose CLI on this machine: the compose validation test is skipped.');

describe.skipIf(testDialect !== 'sqlite')('the container image', () => {
  it('builds in stages on Node 24 slim, without dev dependencies, as a non-root user with a health check', () => {
    const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.every((image) => image?.startsWith('node:24') && image.includes('slim'))).toBe(true);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    // The same runtime flags and preloads as npm start.
    expect(dockerfile).toContain(`CMD ${JSON.stringify(['node', ...startArguments()]).replaceAll(',', ', ')}`);
    // And the variables npm start gives a default, set in the environment of the image that runs.
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const environment = [...finalStage.replaceAll('\\\n', ' ').matchAll(/^ENV (.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    for (const [name, value] of Object.entries(startCommand().defaults)) expect(environment).toContain(`${name}=${value}`);
    // The server's user may write its data and nothing else: not the code, not the compile cache.
    expect([...dockerfile.matchAll(/chown \S+ (.*)$/gm)].map((m) => m[1])).toEqual(['/data']);
  });

  it.skipIf(!compose)('has a compose file that validates', () => {
    const result = spawnSync(compose![0]!, [...compose!.slice(1), '-f', 'docker/compose.yml', 'config'], {
      encoding: 'utf8',
      env: { ...process.env, POSTGRES_PASSWORD: 'example-password', LATCHKEY_SECRET: 'an-example-secret-of-at-least-32-chars' },
    });
    expect(result.status, result.stderr).toBe(0);
    for (const service of ['postgres', 'latchkey-1', 'latchkey-2', 'proxy']) expect(result.stdout).toContain(`${service}:`);
  });
});
