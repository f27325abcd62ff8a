import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import english from './messages/en.json' with { type: 'json' };

export type MessageKey = keyof typeof english;
export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

const MESSAGES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'messages');
const RIGHT_TO_LEFT = new Set(['ar', 'fa', 'he', 'ur', 'ps', 'yi']);
export const DEFAULT_LOCALE = 'en';

export interface Locale {
  tag: string;
  dir: 'ltr' | 'rtl';
  t: Translate;
}

function interpolate(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/**
 * Every messages/<tag>.json file is a language: adding one is adding a file. A message a
 * translation lacks falls back to English.
 */
export function loadCatalogue(common: Record<string, string> = {}) {
  const languages = new Map<string, Record<string, string>>();
  for (const file of fs.readdirSync(MESSAGES_DIR).filter((f) => f.endsWith('.json'))) {
    languages.set(path.basename(file, '.json').toLowerCase(), JSON.parse(fs.readFileSync(path.join(MESSAGES_DIR, file), 'utf8')) as Record<string, string>);
  }
  const available = [...languages.keys()];

  function locale(tag: string): Locale {
    const messages = languages.get(tag) ?? english;
    return {
      tag,
      dir: RIGHT_TO_LEFT.has(tag.split('-')[0]!) ? 'rtl' : 'ltr',
      t: (key, vars = {}) => interpolate(messages[key] ?? english[key] ?? key, { ...common, ...vars }),
    };
  }

  /**
   * The language to answer in: the first of the app's `ui_locales` we have, then the browser's
   * Accept-Language by weight, then English. A regional tag (de-AT) matches its language (de).
   */
  function negotiate(uiLocales: string | undefined, acceptLanguage: string | undefined): Locale {
    const wanted: string[] = [];
    for (const tag of (uiLocales ?? '').split(' ')) if (tag) wanted.push(tag);
    const weighted = (acceptLanguage ?? '')
      .split(',')
      .slice(0, 20)
      .map((part, index) => {
        const [tag = '', ...params] = part.trim().split(';');
        const q = Number(/q=([\d.]+)/.exec(params.join(';'))?.[1] ?? 1);
        return { tag: tag.trim(), q: Number.isFinite(q) ? q : 0, index };
      })
      .filter((l) => l.tag && l.tag !== '*' && l.q > 0)
      .sort((a, b) => b.q - a.q || a.index - b.index);
    for (const l of weighted) wanted.push(l.tag);
    for (const tag of wanted) {
      const lower = tag.toLowerCase().slice(0, 35);
      if (languages.has(lower)) return locale(lower);
      const primary = lower.split('-')[0]!;
      if (languages.has(primary)) return locale(primary);
    }
    return locale(DEFAULT_LOCALE);
  }

  return { available, negotiate, locale };
}

export type Catalogue = ReturnType<typeof loadCatalogue>;
