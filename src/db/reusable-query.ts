import type { Compilable, CompiledQuery, DialectAdapter, Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * A query built and compiled once per database (and used by its transactions too), then run
 * with new values. Kysely builds and compiles a query on every call, which is a good part of
 * what a short look-up or write costs; the queries made on every request never change shape,
 * only their values. `build` is given placeholder values, and `run` must pass the real ones in
 * the same order.
 */
export function reusableQuery<R>(build: (db: Kysely<Database>) => Compilable<R>) {
  // Kept per dialect adapter: a database and its transactions share one, so a query compiled
  // once also runs inside every transaction (writes committed together run in one).
  const compiled = new WeakMap<DialectAdapter, CompiledQuery<R>>();
  return async function run(db: Kysely<Database>, parameters: readonly unknown[]): Promise<R[]> {
    const executor = db.getExecutor();
    // Plugins rewrite queries as they are compiled, and a handle with them shares its adapter
    // with one without; none is used, and a query compiled under one must not run without it.
    if (executor.plugins.length > 0) throw new Error('reusable queries are compiled without plugins');
    const adapter = executor.adapter;
    let query = compiled.get(adapter);
    if (!query) {
      query = build(db).compile();
      compiled.set(adapter, query);
    }
    if (query.parameters.length !== parameters.length) throw new Error(`query takes ${query.parameters.length} values, not ${parameters.length}`);
    return (await db.executeQuery<R>({ ...query, parameters })).rows;
  };
}
