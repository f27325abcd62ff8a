import fs from 'node:fs';

/**
 * The node arguments of `npm start` (runtime flags, preloads, entry point), so that what
 * measures or tests the server as deployed runs exactly what `npm start` does.
 */
export function startArguments(): string[] {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = pkg.scripts.start.trim().split(/\s+/);
  if (command !== 'node') throw new Error(`the start script must run node, not ${command}`);
  return args;
}
