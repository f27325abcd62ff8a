import type Provider from 'oidc-provider';

type ClientClass = Provider['Client'];
type ClientInstance = NonNullable<Awaited<ReturnType<ClientClass['find']>>>;

/**
 * oidc-provider finds the instance of a client read through the adapter by serialising its
 * metadata and hashing it, on every look-up: a token request's client, a sign-in's several.
 * The adapter hands out one frozen metadata object for as long as the registry's version
 * stays the same (registry-cache.ts), so the instance made from that object is kept beside it
 * and given out again without either. A change to any client makes a new object, whose first
 * look-up goes through the library again. An id that is not a stored client's is no client:
 * Latchkey configures none outside the adapter (provider.ts), so the library, which would only
 * ask the adapter again, is not asked.
 *
 * @param findMetadata the adapter's own look-up of a client's metadata.
 */
export function reuseClientInstances(Client: ClientClass, findMetadata: (id: string) => Promise<object | undefined>): void {
  const libraryFind = Client.find.bind(Client);
  // Keyed by the metadata object itself: when the registry lets go of it, the instance goes too.
  const instances = new WeakMap<object, ClientInstance>();
  Client.find = async (id: string) => {
    if (typeof id !== 'string' || !id) return libraryFind(id);
    const metadata = await findMetadata(id);
    if (!metadata) return undefined;
    const known = instances.get(metadata);
    if (known) return known;
    const client = await libraryFind(id);
    if (client) instances.set(metadata, client);
    return client;
  };
}
