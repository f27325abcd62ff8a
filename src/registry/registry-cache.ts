import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { reusableQuery } from '../db/reusable-query.ts';

/**
 * What admins register (clients, APIs, roles and their grants) is read on every token request
 * and changes rarely, so it is kept in memory for as long as the database's registry version
 * stays the same. Triggers bump that version in the same transaction as any change to those
 * tables (migration 0009), whoever makes it: another instance, the admin script, plain SQL.
 * Each request takes the version from a read that started at most SHARED_READ_MS before it,
 * so a change is honoured by every request that starts a millisecond after its commit — a
 * rotated secret or a revoked role never lingers. Under load, requests arriving within that
 * millisecond share one read, which was about a tenth of a token request's CPU.
 */
export interface RegistryCache {
  /** The value for `key` as of this request's registry version, loaded on first use. */
  get<T>(key: readonly string[], load: () => Promise<T>): Promise<T>;
}

interface Generation {
  version: number;
  entries: Map<string, Promise<unknown>>;
}

const registryVersion = reusableQuery((db) => db.selectFrom('registry_version').select('version').where('id', '=', 1));

/** How old a version read may be for a request to start with it: the staleness bound, in milliseconds. */
export const SHARED_READ_MS = 1;

// Entries are registered things (clients, APIs, each subject's access to an API); past this
// many it starts over rather than grow without bound.
const MAX_ENTRIES = 10_000;

/** Freezes a cached value so that no caller can change what the next request is given. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * @param currentRequest identifies the request being served, so that one request sees one
 *   version throughout; outside a request every look-up reads it.
 * @param monotonicMs a clock that never goes back, in milliseconds (for the shared reads).
 */
export function createRegistryCache(
  db: Kysely<Database>,
  currentRequest: () => object | undefined,
  monotonicMs: () => number = () => performance.now(),
): RegistryCache {
  let current: Generation = { version: -1, entries: new Map() };
  // Kept on the request itself: a WeakMap's get and set cost more, and a registry of its own
  // per server means two servers' requests never share the property.
  const versionOfRequest = Symbol('registry version of the request');
  const generationOfRequestSettled = Symbol('registry generation of the request, once read');
  let lastRead: { startedAt: number; generation: Promise<Generation> } | undefined;

  async function readGeneration(): Promise<Generation> {
    const rows = await registryVersion(db, [1]);
    const version = Number(rows[0]?.version);
    // A missing counter means nothing can be trusted to stay put: cache nothing.
    if (!Number.isSafeInteger(version)) return { version: -1, entries: new Map() };
    // Any other version starts afresh, lower ones too: a database restored from a backup or
    // failed over to a replica may count from below a version already seen, and what was
    // cached then must not come back. (An answer that arrives after a newer one, from
    // concurrent reads over a pool, only costs reloads.)
    if (version !== current.version) current = { version, entries: new Map() };
    return current;
  }

  /** A read started within SHARED_READ_MS, or a new one. */
  function recentGeneration(): Promise<Generation> {
    const now = monotonicMs();
    // A clock seen going back (only an injected one can) shares nothing.
    if (lastRead && now >= lastRead.startedAt && now - lastRead.startedAt < SHARED_READ_MS) return lastRead.generation;
    const generation = readGeneration();
    lastRead = { startedAt: now, generation };
    return generation;
  }

  type Holder = { [versionOfRequest]?: Promise<Generation>; [generationOfRequestSettled]?: Generation };

  function generationOfRequest(holder: Holder): Promise<Generation> {
    let generation = holder[versionOfRequest];
    if (!generation) {
      generation = recentGeneration();
      holder[versionOfRequest] = generation;
      generation.then((settled) => (holder[generationOfRequestSettled] = settled), () => {});
    }
    return generation;
  }

  function entry<T>(generation: Generation, key: readonly string[], load: () => Promise<T>): Promise<T> {
    const id = keyOf(key);
    const cached = generation.entries.get(id);
    if (cached) return cached as Promise<T>;
    const loading = load().then(deepFreeze);
    if (generation.entries.size >= MAX_ENTRIES) generation.entries.clear();
    generation.entries.set(id, loading);
    // Only what exists is remembered: keys come partly from requests (client ids), so
    // remembering misses would let made-up ids fill memory. A failed load (the database
    // briefly unreachable) is not remembered either.
    const forget = () => {
      if (generation.entries.get(id) === loading) generation.entries.delete(id);
    };
    loading.then((value) => value === undefined && forget(), forget);
    return loading;
  }

  return {
    get<T>(key: readonly string[], load: () => Promise<T>): Promise<T> {
      const request = currentRequest() as Holder | undefined;
      if (!request) return readGeneration().then((generation) => entry(generation, key, load));
      // A token request makes several look-ups; once its version is known, each is a map
      // look-up handing back the cached promise, without a turn of its own.
      const settled = request[generationOfRequestSettled];
      if (settled) return entry(settled, key, load);
      return generationOfRequest(request).then((generation) => entry(generation, key, load));
    },
  };
}

/** Each part prefixed by its length: no two keys of different parts collide. */
function keyOf(key: readonly string[]): string {
  let id = '';
  for (const part of key) id += `${part.length}:${part}`;
  return id;
}
