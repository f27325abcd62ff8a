import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatchToRoutersOrProvider } from '../src/http/route-dispatch.ts';

let server: http.Server;
let base: string;
let matched = 0;

beforeAll(async () => {
  const pages = new Router();
  // A router-wide middleware under a path, as the interaction router has.
  pages.use('/account', async (ctx, next) => {
    ctx.set('X-Account', 'yes');
    await next();
  });
  pages.get('/account/:id', (ctx) => {
    ctx.body = `account ${ctx.params.id}`;
  });
  const health = new Router();
  health.get('/healthz', (ctx) => {
    ctx.body = 'healthy';
  });
  // Counts every time a router is asked to match a request.
  for (const router of [pages, health]) {
    const match = router.match.bind(router);
    router.match = (...args: Parameters<typeof match>) => {
      matched++;
      return match(...args);
    };
  }
  const app = new Koa();
  app.use(
    // The provider answers its own paths and 404 for any other, as oidc-provider does.
    dispatchToRoutersOrProvider([pages, health], async (ctx) => {
      ctx.set('X-Provider', 'yes');
      if (ctx.path === '/token') ctx.body = 'token';
    }),
  );
  server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

async function get(path: string, method = 'GET') {
  const before = matched;
  const response = await fetch(base + path, { method });
  const header = (name: string) => response.headers.get(name);
  return { status: response.status, body: await response.text(), allow: header('allow'), account: header('x-account'), provider: header('x-provider'), routersAsked: matched - before };
}

describe('dispatching between our routes and the provider', () => {
  it('serves our routes as the routers match them: any letter case, with or without a trailing slash', async () => {
    const served = await get('/account/7');
    expect(served).toMatchObject({ status: 200, body: 'account 7', account: 'yes', provider: null });
    // The routers were asked (so that "asked none" below means something).
    expect(served.routersAsked).toBeGreaterThan(0);
    expect(await get('/ACCOUNT/7/')).toMatchObject({ status: 200, body: 'account 7' });
    expect(await get('/healthz/')).toMatchObject({ status: 200, body: 'healthy' });
  });

  it('answers a wrong method on our route with 405 and Allow', async () => {
    const response = await get('/account/7', 'DELETE');
    expect(response.status).toBe(405);
    expect(response.allow).toContain('GET');
  });

  it('hands a path under our segment that no route serves on to the provider', async () => {
    expect(await get('/account/7/more')).toMatchObject({ status: 404, provider: 'yes', allow: null });
  });

  it('sends every other path straight to the provider, past every router', async () => {
    expect(await get('/token')).toEqual({ status: 200, body: 'token', allow: null, account: null, provider: 'yes', routersAsked: 0 });
    for (const path of ['/accounts', '/.well-known/openid-configuration', '/healthzz', '/']) {
      expect(await get(path)).toMatchObject({ status: 404, allow: null, provider: 'yes', routersAsked: 0 });
    }
  });

  it('refuses, at start-up, a route without a fixed first segment', () => {
    for (const path of ['/:anything', '/account{/:id}', '/*rest']) {
      const router = new Router();
      router.get(path, (ctx) => {
        ctx.body = 'x';
      });
      expect(() => dispatchToRoutersOrProvider([router], async () => {}), path).toThrow(/does not start with a fixed segment/);
    }
  });
});
