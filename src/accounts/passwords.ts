import argon2 from 'argon2';
import type { Argon2Settings } from '../config.ts';
import { createHashLimiter, type HashLimiter } from './hash-limiter.ts';
import { keepHashMemory } from './hash-memory.ts';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Checks a password against a stored hash; a malformed hash is a mismatch, not an error. */
  verify(hash: string, password: string): Promise<boolean>;
  /**
   * Spends the same work as a real verification. Used when the account does not exist so that
   * an unknown email costs as much as a wrong password and timing reveals nothing.
   */
  verifyNothing(password: string): Promise<void>;
}

export function createPasswordHasher(settings: Argon2Settings, limiter: HashLimiter = createHashLimiter(settings.maxConcurrent)): PasswordHasher {
  const options = {
    type: argon2.argon2id as 2,
    memoryCost: settings.memoryKiB,
    timeCost: settings.timeCost,
    parallelism: settings.parallelism,
  };
  // From the second hash on, hashes wait for the one-off (once per process) that lets glibc
  // keep their memory: an admin command hashes once and is spared it.
  let first = true;
  const run = <T>(task: () => Promise<T>) =>
    limiter.run(() => {
      if (!first) return keepHashMemory(settings.memoryKiB).then(task);
      first = false;
      return task();
    });
  let decoy: Promise<string> | undefined;
  const verify = async (hash: string, password: string) => {
    try {
      return await run(() => argon2.verify(hash, password));
    } catch {
      return false;
    }
  };
  return {
    hash: (password) => run(() => argon2.hash(password, options)),
    verify,
    async verifyNothing(password) {
      decoy ??= run(() => argon2.hash('latchkey decoy password', options));
      await verify(await decoy, password);
    },
  };
}
