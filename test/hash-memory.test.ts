import { describe, expect, it } from 'vitest';
import { runProgram } from './helpers/program.ts';

// What is kept or given back is glibc's to decide; elsewhere there is nothing to see.
const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
const glibc = process.platform === 'linux' && Boolean(header?.glibcVersionRuntime);

describe.skipIf(!glibc)("password hashes' memory", () => {
  it('is kept for the next hashes, two at a time, rather than given back and faulted in again', () => {
    const result = runProgram(
      [
        "import fs from 'node:fs';",
        "const { createPasswordHasher } = await import('./src/accounts/passwords.ts');",
        "const { loadConfig } = await import('./src/config.ts');",
        'const settings = { ...loadConfig({}).argon2, maxConcurrent: 2 };',
        'const hasher = createPasswordHasher(settings);',
        "const hash = await hasher.hash('correct horse');",
        "const pair = () => Promise.all([hasher.verify(hash, 'correct horse'), hasher.verify(hash, 'correct horse')]);",
        // Minor page faults of the whole process, the fields after the command name.
        "const faults = () => Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);",
        'await pair();',
        'const before = faults();',
        'for (let i = 0; i < 5; i++) await pair();',
        'console.log(JSON.stringify({ perVerification: (faults() - before) / 10, pages: (settings.memoryKiB * 1024) / 4096 }));',
      ],
      // As `npm start` and the container image run it.
      { MALLOC_ARENA_MAX: '1' },
    );
    expect(result.status, result.stderr).toBe(0);
    const { perVerification, pages } = JSON.parse(result.stdout) as { perVerification: number; pages: number };
    // Given back, every page of a hash is faulted in again (19 MiB: about 4,900 faults).
    expect(perVerification).toBeLessThan(pages / 20);
  });
});

// ru_maxrss is in KiB on Linux; other systems count it otherwise.
describe.skipIf(process.platform !== 'linux')("the one-off that keeps hashes' memory", () => {
  it('waits for a second hash, so a process that hashes once (an admin command) is spared it', () => {
    const result = runProgram([
      "const { createPasswordHasher } = await import('./src/accounts/passwords.ts');",
      "const { loadConfig } = await import('./src/config.ts');",
      'const settings = loadConfig({}).argon2;',
      'const hasher = createPasswordHasher(settings);',
      // Peak RSS above what the process holds now, in MiB: each hash's memory is all touched.
      'const start = process.memoryUsage().rss;',
      'const peakGrowth = () => (process.resourceUsage().maxRSS * 1024 - start) / 2 ** 20;',
      "const hash = await hasher.hash('correct horse');",
      'const afterFirst = peakGrowth();',
      "await hasher.verify(hash, 'correct horse');",
      'console.log(JSON.stringify({ afterFirst, afterSecond: peakGrowth(), hashMiB: settings.memoryKiB / 1024 }));',
    ]);
    expect(result.status, result.stderr).toBe(0);
    const { afterFirst, afterSecond, hashMiB } = JSON.parse(result.stdout) as { afterFirst: number; afterSecond: number; hashMiB: number };
    // The one-off's block is just under 32 MiB, well above a default hash's 19 MiB: each
    // reading is held to the side of the midpoint between them it should be on.
    expect(hashMiB).toBeLessThan(24);
    expect(afterFirst).toBeLessThan(hashMiB + 6);
    expect(afterSecond).toBeGreaterThan(hashMiB + 6);
  });
});
