import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

/** Runs lines of an ES module in a Node process of its own, from the project's folder, with nothing of the environment but PATH and `env`. */
export function runProgram(lines: readonly string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--input-type=module', '-e', lines.join('\n')], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
}
