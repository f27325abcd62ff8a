import { describe, expect, it } from 'vitest';
import { alternate, mergeSlices, type Measured } from '../scripts/bench/slices.ts';
import { testDialect } from './helpers/database.ts';

const slice = (count: number, p50: number, p99: number, errors = 0): Measured => ({ count, seconds: 2, cpu: 1.5, p50, p99, errors });

// How the benchmark measures Latchkey and bare oidc-provider in one scenario (and argon2id
// alone beside their sign-ins): taking turns, so that a machine whose speed drifts meets them
// alike. The benchmark's own smoke test runs it.
describe.skipIf(testDialect !== 'sqlite')('benchmark slices', () => {
  it('takes turns between the two servers, one slice each, each round in the order opposite to the last', async () => {
    const order: string[] = [];
    const [ours, theirs] = await alternate(
      3,
      async () => (order.push('ours'), slice(100, 5, 20)),
      async () => (order.push('theirs'), slice(200, 3, 10)),
    );
    expect(order).toEqual(['ours', 'theirs', 'theirs', 'ours', 'ours', 'theirs']);
    expect(ours).toMatchObject({ count: 300, seconds: 6, cpu: 4.5 });
    expect(theirs).toMatchObject({ count: 600, seconds: 6, cpu: 4.5 });
  });

  it('takes turns among three, as sign-ins do with argon2id alone beside the two servers', async () => {
    const order: string[] = [];
    const measured = await alternate(
      4,
      async () => (order.push('ours'), slice(10, 50, 90)),
      async () => (order.push('theirs'), slice(12, 40, 80)),
      async () => (order.push('argon2id'), slice(14, 0, 0)),
    );
    expect(order).toEqual(['ours', 'theirs', 'argon2id', 'argon2id', 'theirs', 'ours', 'ours', 'theirs', 'argon2id', 'argon2id', 'theirs', 'ours']);
    expect(measured.map((m) => m.count)).toEqual([40, 48, 56]);
  });

  it('adds up counts, time, CPU and errors, and weights percentiles by each slice’s count', () => {
    const merged = mergeSlices([slice(300, 4, 10, 1), slice(100, 8, 30, 2)]);
    expect(merged).toEqual({ count: 400, seconds: 4, cpu: 3, p50: 5, p99: 15, errors: 3 });
  });

  it('gives zero latencies, not NaN, when no slice measured anything', () => {
    expect(mergeSlices([slice(0, 0, 0, 4), slice(0, 0, 0)])).toEqual({ count: 0, seconds: 4, cpu: 3, p50: 0, p99: 0, errors: 4 });
  });
});
