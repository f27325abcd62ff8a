/**
 * Lets at most `limit` tasks run at once; the rest wait their turn, first come first served.
 *
 * Password hashes run on libuv's small thread pool (one thread per core and one more), which
 * also serves the WebCrypto signing of tokens and file reads. Unbounded, a burst of sign-ins
 * fills it and token requests queue behind argon2, and every hash in flight holds its memory
 * (19 MiB by default). More hashes at once than there are cores do not finish sooner anyway.
 */
export interface HashLimiter {
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createHashLimiter(limit: number): HashLimiter {
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      else running++;
      try {
        return await task();
      } finally {
        // The slot passes straight to the next in line, or is given back.
        const next = waiting.shift();
        if (next) next();
        else running--;
      }
    },
  };
}
