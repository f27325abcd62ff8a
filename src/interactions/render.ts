import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { Context } from 'koa';
import type { Branding } from '../config.ts';
import type { Catalogue, MessageKey } from '../i18n/catalogue.ts';

export const viewsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');
export const staticDir = path.join(viewsDir, 'static');

export interface PageLocals {
  /** The page title, as a message key. */
  title: MessageKey;
  /** The app's ui_locales, when the page belongs to an authorization request. */
  uiLocales?: string | undefined;
  [key: string]: unknown;
}

/** Renders a page into the response, in the language the request asks for. */
export type RenderPage = (ctx: Context, view: string, locals: PageLocals) => Promise<void>;

// Asset URLs carry a digest of their content so they can be cached for a year.
export function assetVersion(content: string | Buffer): string {
  return crypto.createHash('sha256').update(content).digest('hex').slice(0, 12);
}

/** The stylesheet that carries the brand colour: a file, since the CSP allows no inline style. */
export function brandStylesheet(branding: Branding): string {
  return `:root { --primary: ${branding.primaryColor}; }\n@media (prefers-color-scheme: dark) { :root { --primary: ${branding.primaryColorDark}; } }\n`;
}

/**
 * Renders views/<view>.ejs inside views/layout.ejs. Templates only lay out what they are given:
 * `t(key)` for words, `<%= %>` to escape every value.
 */
export function createPageRenderer(options: { cache: boolean; catalogue: Catalogue; branding: Branding }): RenderPage {
  const { catalogue, branding } = options;
  const stylesheets = [
    `/static/latchkey.css?v=${assetVersion(fs.readFileSync(path.join(staticDir, 'latchkey.css')))}`,
    `/static/brand.css?v=${assetVersion(brandStylesheet(branding))}`,
  ];
  const script = `/static/latchkey.js?v=${assetVersion(fs.readFileSync(path.join(staticDir, 'latchkey.js')))}`;
  const render = (file: string, data: Record<string, unknown>) => ejs.renderFile(path.join(viewsDir, file), data, { cache: options.cache, async: false });
  return async (ctx, view, locals) => {
    const oidcParams = (ctx as Context & { oidc?: { params?: Record<string, unknown> } }).oidc?.params;
    const uiLocales = locals.uiLocales ?? (typeof oidcParams?.ui_locales === 'string' ? oidcParams.ui_locales : undefined);
    const locale = catalogue.negotiate(uiLocales, ctx.get('accept-language'));
    const data = { ...locals, t: locale.t, lang: locale.tag, dir: locale.dir, brand: branding, stylesheets, script };
    const body = await render(`${view}.ejs`, data);
    ctx.type = 'html';
    ctx.set('Content-Language', locale.tag);
    ctx.body = await render('layout.ejs', { ...data, body });
  };
}
