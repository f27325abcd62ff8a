import type Router from '@koa/router';
import type { Middleware } from 'koa';
import compose from 'koa-compose';

/**
 * Sends a request to our routers only when its path starts with a segment one of their routes
 * starts with, and every other request straight to the provider. Otherwise each provider
 * request (nearly all of the traffic) would be matched against every route of every router and
 * pass their allowed-methods checks for nothing, about 1 % of a token request's CPU. The
 * segments are read from the routers' routes, so every route must be registered before this
 * is called.
 */
export function dispatchToRoutersOrProvider(routers: readonly Router[], provider: Middleware): Middleware {
  const segments = new Set<string>();
  for (const router of routers) {
    for (const layer of router.stack) segments.add(firstSegment(layer.path));
  }
  const escaped = [...segments].map((segment) => segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // Case-insensitive and with or without a trailing slash, as the routers match.
  const ours = new RegExp(`^/(?:${escaped.join('|')})(?:/|$)`, 'i');
  const routes = compose(routers.flatMap((router) => [router.routes(), router.allowedMethods()])) as Middleware;
  return (ctx, next) => (ours.test(ctx.path) ? routes(ctx, () => provider(ctx, next)) : provider(ctx, next));
}

/** A route's fixed first segment; a route without one would have to see every request. */
function firstSegment(path: string | RegExp): string {
  // Parameters, wildcards, optional groups and escapes (path-to-regexp's : * { } \) are not fixed.
  const segment = typeof path === 'string' ? /^\/([^/:*?(){}\\!]+)(?:\/|$)/.exec(path)?.[1] : undefined;
  if (!segment) throw new Error(`route ${String(path)} does not start with a fixed segment`);
  return segment;
}
