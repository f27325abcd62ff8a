import { describe, expect, it } from 'vitest';
import { createHashLimiter, type HashLimiter } from '../src/accounts/hash-limiter.ts';
import { createPasswordHasher } from '../src/accounts/passwords.ts';

/** A task that runs until released, recording how many ran at once. */
function gate(state: { running: number; most: number; order: number[] }, id: number) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const task = async () => {
    state.running++;
    state.most = Math.max(state.most, state.running);
    state.order.push(id);
    await released;
    state.running--;
    return id;
  };
  return { task, release };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the password hash limiter', () => {
  it('runs at most its limit at once, the rest in the order they came', async () => {
    const limiter = createHashLimiter(2);
    const state = { running: 0, most: 0, order: [] as number[] };
    const gates = [1, 2, 3, 4, 5].map((id) => gate(state, id));
    const results = gates.map((g) => limiter.run(g.task));
    await settle();
    expect(state.order).toEqual([1, 2]);
    for (const g of gates) {
      g.release();
      await settle();
    }
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4, 5]);
    expect(state.order).toEqual([1, 2, 3, 4, 5]);
    expect(state.most).toBe(2);
  });

  it('frees the slot of a task that fails', async () => {
    const limiter = createHashLimiter(1);
    await expect(limiter.run(async () => Promise.reject(new Error('broken hash')))).rejects.toThrow('broken hash');
    expect(await limiter.run(async () => 'next')).toBe('next');
  });

  it('is what every hash and verification of the password hasher goes through', async () => {
    let runs = 0;
    const counting: HashLimiter = { run: (task) => (runs++, task()) };
    const hasher = createPasswordHasher({ memoryKiB: 8192, timeCost: 1, parallelism: 1, maxConcurrent: 1 }, counting);
    const hash = await hasher.hash('a passphrase for the limiter');
    expect(await hasher.verify(hash, 'a passphrase for the limiter')).toBe(true);
    await hasher.verifyNothing('another passphrase');
    // hash, verify, and the decoy's hash and verification
    expect(runs).toBe(4);
  });
});
