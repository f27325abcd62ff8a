import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

export const viewsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');
export const staticDir = path.join(viewsDir, 'static');

export interface PageOptions {
  title: string;
  [key: string]: unknown;
}

export type RenderPage = (view: string, locals: PageOptions) => Promise<string>;

// The stylesheet URL carries a digest of its content so it can be cached for a year.
function assetVersion(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(path.join(staticDir, file))).digest('hex').slice(0, 12);
}

/**
 * Renders views/<view>.ejs inside views/layout.ejs. Templates only lay out what they are given;
 * `<%= %>` escapes every value.
 */
export function createPageRenderer(options: { cache: boolean }): RenderPage {
  const stylesheet = `/static/latchkey.css?v=${assetVersion('latchkey.css')}`;
  return async (view, locals) => {
    const file = path.join(viewsDir, `${view}.ejs`);
    const body = await ejs.renderFile(file, locals, { cache: options.cache, async: false });
    return ejs.renderFile(
      path.join(viewsDir, 'layout.ejs'),
      { ...locals, body, stylesheet },
      { cache: options.cache, async: false },
    );
  };
}
