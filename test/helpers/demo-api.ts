import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { AccessDenied, createTokenVerifier, protect, requireScope } from '../../src/resource-server/index.ts';

export interface DemoApi {
  url: string;
  close(): Promise<void>;
}

/**
 * A small API protected by Latchkey tokens, as a team would write it: Koa middleware on two
 * routes, and the framework-free function on a plain node:http route.
 */
export async function startDemoApi(issuer: string, audience: string): Promise<DemoApi> {
  const verifier = createTokenVerifier({ issuer, audience });
  const router = new Router();
  router.get('/invoices', protect(verifier, { scopes: ['invoices:read'] }), (ctx) => {
    ctx.body = { invoices: [], sub: ctx.state.accessToken.sub, scope: ctx.state.accessToken.scope };
  });
  router.post('/invoices', protect(verifier, { scopes: ['invoices:write'] }), (ctx) => {
    ctx.status = 201;
    ctx.body = { created: true };
  });
  router.get('/admin', protect(verifier, { roles: ['billing-admin'] }), (ctx) => {
    ctx.body = { admin: true, roles: ctx.state.accessToken.roles };
  });
  const app = new Koa();
  app.use(router.routes());
  const koaHandler = app.callback();

  const server = http.createServer(async (req, res) => {
    if (!req.url?.startsWith('/plain')) return koaHandler(req, res);
    try {
      const claims = await verifier.authenticate({
        method: req.method ?? 'GET',
        url: `http://${req.headers.host}${req.url}`,
        headers: { authorization: req.headers.authorization, dpop: req.headers.dpop as string | undefined },
      });
      requireScope(claims, 'invoices:read');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: claims.sub }));
    } catch (err) {
      if (!(err instanceof AccessDenied)) throw err;
      res.writeHead(err.status, { 'www-authenticate': err.challenge, 'content-type': 'application/json' }).end(JSON.stringify(err.body));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
