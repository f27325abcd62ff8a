import fs from 'node:fs';

export interface StartCommand {
  /** Variables the start script gives a value unless the environment already has one. */
  defaults: Record<string, string>;
  /** Node's arguments: runtime flags, preloads, entry point. */
  args: string[];
}

// The one form of assignment the start script may use: NAME=${NAME:-value}, so that a value
// set in the environment still wins, as it would without the script.
const DEFAULTED = /^([A-Z_][A-Z0-9_]*)=\$\{\1:-([^}]*)\}$/;

/**
 * What `npm start` runs, so that what measures or tests the server as deployed runs exactly
 * what `npm start` does.
 */
export function startCommand(): StartCommand {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  return parseStartScript(pkg.scripts.start);
}

/** Splits a start script into the defaults it sets and node's arguments; refuses any other shape. */
export function parseStartScript(script: string): StartCommand {
  const words = script.trim().split(/\s+/);
  const defaults: Record<string, string> = {};
  while (words[0]?.includes('=')) {
    const match = DEFAULTED.exec(words.shift()!);
    if (!match) throw new Error('the start script may set variables only as NAME=${NAME:-value}');
    defaults[match[1]!] = match[2]!;
  }
  const [command, ...args] = words;
  if (command !== 'node') throw new Error(`the start script must run node, not ${command}`);
  return { defaults, args };
}

export const startArguments = (): string[] => startCommand().args;
