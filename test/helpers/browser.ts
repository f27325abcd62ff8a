import { parse, type HTMLElement } from 'node-html-parser';

interface Cookie {
  /** host:port; cookies never travel to another origin (two providers may use the same names). */
  host: string;
  name: string;
  value: string;
  path: string;
}

export interface Page {
  url: string;
  status: number;
  headers: Headers;
  html: string;
  doc: HTMLElement;
}

export interface Landing {
  /** The relying party's URL the browser was finally sent to (not fetched). */
  callback: URL;
}

export interface FormData {
  action: string;
  method: string;
  fields: Record<string, string>;
}

/**
 * Enough of a browser for sign-in flows: a cookie jar with path scoping, manual redirects, and
 * HTML forms submitted with their hidden fields, as a person's browser would.
 */
export class Browser {
  private cookies: Cookie[] = [];
  /** Requests to URLs starting with this prefix are not fetched: they belong to the relying party. */
  readonly stopAt: string;

  constructor(stopAt: string) {
    this.stopAt = stopAt;
  }

  /** The Cookie header this browser would send to the URL. */
  cookieHeader(url: URL): string {
    // RFC 6265 §5.1.4 path-match.
    const matches = (cookiePath: string) =>
      url.pathname === cookiePath ||
      (url.pathname.startsWith(cookiePath) && (cookiePath.endsWith('/') || url.pathname[cookiePath.length] === '/'));
    return this.cookies
      .filter((c) => c.host === url.host && matches(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, response: Response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let cookiePath = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=');
        if (key!.toLowerCase() === 'path') cookiePath = val;
        if (key!.toLowerCase() === 'expires' && new Date(val).getTime() < Date.now()) expired = true;
        if (key!.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
      }
      this.cookies = this.cookies.filter((c) => !(c.host === url.host && c.name === name && c.path === cookiePath));
      if (!expired) this.cookies.push({ host: url.host, name, value, path: cookiePath });
    }
  }

  hasCookie(name: string): boolean {
    return this.cookies.some((c) => c.name === name);
  }

  /** Sends one request and follows redirects until a page, or until the relying party is reached. */
  async request(url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<Page | Landing> {
    let target = new URL(url);
    let method = init.method ?? 'GET';
    let body: URLSearchParams | undefined = init.body;
    for (let hop = 0; hop < 20; hop++) {
      if (target.href.startsWith(this.stopAt)) return { callback: target };
      const headers: Record<string, string> = { accept: 'text/html' };
      const cookie = this.cookieHeader(target);
      if (cookie) headers.cookie = cookie;
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(target, { method, headers, body, redirect: 'manual' });
      this.store(target, response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        target = new URL(location, target);
        method = 'GET';
        body = undefined;
        await response.arrayBuffer();
        continue;
      }
      const html = await response.text();
      return { url: target.href, status: response.status, headers: response.headers, html, doc: parse(html) };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  async page(url: string): Promise<Page> {
    return asPage(await this.request(url));
  }

  /** Submits the form whose action matches, with its hidden fields and the given ones. */
  async submit(page: Page, action: RegExp, fields: Record<string, string> = {}): Promise<Page | Landing> {
    const form = findForm(page, action);
    const body = new URLSearchParams({ ...form.fields, ...fields });
    return this.request(new URL(form.action, page.url).href, { method: form.method, body });
  }
}

export function forms(page: Page): FormData[] {
  return page.doc.querySelectorAll('form').map((form) => {
    const fields: Record<string, string> = {};
    for (const input of form.querySelectorAll('input')) {
      const name = input.getAttribute('name');
      if (name) fields[name] = input.getAttribute('value') ?? '';
    }
    return { action: form.getAttribute('action') ?? page.url, method: (form.getAttribute('method') ?? 'GET').toUpperCase(), fields };
  });
}

export function findForm(page: Page, action: RegExp): FormData {
  const form = forms(page).find((f) => action.test(f.action));
  if (!form) throw new Error(`no form with action ${action} on ${page.url} (status ${page.status}):\n${page.html.slice(0, 500)}`);
  return form;
}

export function asPage(result: Page | Landing): Page {
  if ('callback' in result) throw new Error(`expected a page, but the browser was sent to ${result.callback.href}`);
  return result;
}

export function asLanding(result: Page | Landing): URL {
  if (!('callback' in result)) {
    throw new Error(`expected a redirect to the app, got a page ${result.url} (${result.status}):\n${result.html.slice(0, 800)}`);
  }
  return result.callback;
}
