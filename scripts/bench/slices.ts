/** One measurement of a scenario against one server. */
export interface Measured {
  count: number;
  seconds: number;
  /** CPU seconds the server used over it, all its threads. */
  cpu: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * Adds up the slices of one measurement. Their p50 and p99 are averaged, weighted by how many
 * operations each slice measured: autocannon reports percentiles, not the samples behind them.
 */
export function mergeSlices(parts: Measured[]): Measured {
  const sum = (pick: (m: Measured) => number) => parts.reduce((total, m) => total + pick(m), 0);
  const count = sum((m) => m.count);
  const weighted = (pick: (m: Measured) => number) => (count > 0 ? sum((m) => pick(m) * m.count) / count : 0);
  return { count, seconds: sum((m) => m.seconds), cpu: sum((m) => m.cpu), p50: weighted((m) => m.p50), p99: weighted((m) => m.p99), errors: sum((m) => m.errors) };
}

/**
 * Measures several parties — servers, and what is measured beside them — in alternating slices
 * of one scenario, so that a shared machine whose speed drifts over seconds meets them alike,
 * and their ratios are not the drift's. Each round reverses the order of the one before —
 * first, second, second, first, first, … — so that a drift in one direction favours none of
 * them. Returns each party's slices merged, in the order given.
 */
export async function alternate(slices: number, ...parties: (() => Promise<Measured>)[]): Promise<Measured[]> {
  const measured: Measured[][] = parties.map(() => []);
  for (let slice = 0; slice < slices; slice++) {
    const order = parties.map((_, index) => index);
    if (slice % 2 === 1) order.reverse();
    for (const index of order) measured[index]!.push(await parties[index]!());
  }
  return measured.map(mergeSlices);
}
