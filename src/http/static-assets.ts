import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import type { Branding } from '../config.ts';
import { brandStylesheet, staticDir } from '../interactions/render.ts';

const types: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Serves the files of views/static by exact name only, so no path can reach outside it, and
 * brand.css, made from the branding settings.
 */
export function createStaticRouter(branding: Branding): Router {
  const files = new Map<string, string | Buffer>(
    fs.readdirSync(staticDir)
      .filter((name) => types[path.extname(name)])
      .map((name) => [name, fs.readFileSync(path.join(staticDir, name))] as const),
  );
  files.set('brand.css', brandStylesheet(branding));
  const router = new Router();
  router.get('/static/:name', (ctx) => {
    const content = files.get(ctx.params.name ?? '');
    if (!content) return;
    ctx.type = types[path.extname(ctx.params.name!)]!;
    // URLs carry a content digest (?v=…), so a year-long cache never serves a stale file.
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.body = content;
  });
  return router;
}
