import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startLatchkey, type RunningServer } from './helpers/server.ts';
import { admin, registerApp, registerUser, TEST_PASSWORD } from './helpers/admin.ts';
import { RelyingParty } from './helpers/relying-party.ts';
import { testDialect } from './helpers/database.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`No Chromium at ${CHROMIUM}: the browser tests are skipped (apt-get install -y chromium).`);

const SCREENSHOTS = path.resolve('test-artifacts/screenshots');
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
// A 1x1 PNG: enough to check an app's logo is shown.
const LOGO = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

// Types for the few browser globals the page-side callbacks touch (the project has no DOM lib).
type PageGlobals = {
  document: { activeElement: { textContent: string | null } | null; documentElement: { scrollWidth: number } };
  axe: { run: (o: object) => Promise<{ violations: { id: string; help: string; nodes: unknown[] }[] }> };
};
// The app's side: a real listener on loopback that remembers where the browser came back to.
let APP_REDIRECT = '';
let landedAt: URL | null = null;
let appServer: http.Server;

const VIEWPORTS = { phone: { width: 320, height: 640 }, desktop: { width: 1280, height: 800 } } as const;

// Real Chromium against a real server; once per suite run (the pages do not depend on the database).
describe.skipIf(!hasChromium || testDialect !== 'sqlite')('pages in a real browser', () => {
  let server: RunningServer;
  let rp: RelyingParty;
  let browser: Browser;

  beforeAll(async () => {
    appServer = http.createServer((req, res) => {
      // Only the callback counts: the browser also asks the app for /favicon.ico.
      const url = new URL(req.url ?? '/', APP_REDIRECT);
      if (url.pathname === '/callback') landedAt = url;
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html lang="en"><title>App</title><p>Back in the app</p></html>');
    });
    await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
    APP_REDIRECT = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`;
    server = await startLatchkey({ env: { SUPPORT_URL: 'https://help.example.com/' } });
    const app = await registerApp(server.databaseUrl, APP_REDIRECT);
    await admin(server.databaseUrl, ['client', 'update', app.clientId, '--name', 'Invoices', '--logo-uri', LOGO, '--policy-uri', 'https://invoices.example.com/privacy', '--tos-uri', 'https://invoices.example.com/terms']);
    await registerUser(server.databaseUrl, 'browser@example.com');
    rp = await RelyingParty.discover(server.issuer, app.clientId, app.clientSecret, { redirectUri: APP_REDIRECT });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    appServer?.closeAllConnections();
    appServer?.close();
  });

  async function newPage(options: { viewport?: { width: number; height: number }; locale?: string; bypassCSP?: boolean } = {}): Promise<{ context: BrowserContext; page: Page; landed: () => URL | null }> {
    const context = await browser.newContext({ viewport: options.viewport ?? VIEWPORTS.desktop, locale: options.locale ?? 'en-US', bypassCSP: options.bypassCSP ?? false });
    const page = await context.newPage();
    landedAt = null;
    return { context, page, landed: () => landedAt };
  }

  async function tabTo(page: Page, text: string) {
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.textContent?.trim())) === text) return;
    }
    throw new Error(`could not reach "${text}" with the Tab key`);
  }

  async function axeViolations(page: Page) {
    await page.evaluate(axeSource);
    return page.evaluate(async () => {
      const result = await (globalThis as unknown as PageGlobals).axe.run({
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
      });
      return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
    });
  }

  for (const [name, viewport] of Object.entries(VIEWPORTS)) {
    it(`signs in and consents by keyboard alone on a ${name}`, async () => {
      const { context, page, landed } = await newPage({ viewport });
      try {
        const request = await rp.authorizationRequest('openid email');
        await page.goto(request.url);
        await page.screenshot({ path: path.join(SCREENSHOTS, `login-${name}.png`), fullPage: true });
        // The email field has focus on arrival.
        await page.keyboard.type('browser@example.com');
        await page.keyboard.press('Tab');
        await page.keyboard.type(TEST_PASSWORD);
        await page.keyboard.press('Enter');
        await page.waitForSelector('h1:text("Allow access?")');
        expect(await page.locator('.lead').textContent()).toContain('Invoices');
        expect(await page.locator('img.client-logo').getAttribute('src')).toBe(LOGO);
        expect(await page.locator('a:text("Privacy policy")').getAttribute('href')).toBe('https://invoices.example.com/privacy');
        await page.screenshot({ path: path.join(SCREENSHOTS, `consent-${name}.png`), fullPage: true });
        await tabTo(page, 'Allow');
        await page.keyboard.press('Enter');
        await page.waitForURL((url) => url.origin === new URL(APP_REDIRECT).origin);
        expect(landed()?.searchParams.get('code')).toBeTruthy();
        // Nothing overflows the narrowest screen.
        expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
      } finally {
        await context.close();
      }
    });
  }

  it('shows the error for a wrong password, keeps the email, and announces it', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto((await rp.authorizationRequest()).url);
      await page.fill('#email', 'browser@example.com');
      await page.fill('#password', 'not the right password');
      await page.click('button:text("Sign in")');
      const alert = page.locator('[role=alert]');
      await expect.poll(() => alert.textContent()).toBe('The email or password is not correct.');
      expect(await page.inputValue('#email')).toBe('browser@example.com');
      expect(await page.locator('#password').getAttribute('aria-describedby')).toBe('login-error');
      // The show-password switch, from the external script.
      await page.check('[data-reveals=password] input');
      expect(await page.locator('#password').getAttribute('type')).toBe('text');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'login-error.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('renders German for a German browser, French for ui_locales=fr', async () => {
    const german = await newPage({ locale: 'de-DE' });
    try {
      await german.page.goto((await rp.authorizationRequest()).url);
      expect(await german.page.getAttribute('html', 'lang')).toBe('de');
      expect(await german.page.locator('h1').textContent()).toBe('Anmelden');
      expect(await german.page.locator('label[for=password]').textContent()).toBe('Passwort');
      await german.page.screenshot({ path: path.join(SCREENSHOTS, 'login-de.png'), fullPage: true });
    } finally {
      await german.context.close();
    }
    const french = await newPage({ locale: 'de-DE' });
    try {
      await french.page.goto((await rp.authorizationRequest('openid', { ui_locales: 'fr-CA es' })).url);
      expect(await french.page.getAttribute('html', 'lang')).toBe('fr');
      expect(await french.page.locator('h1').textContent()).toBe('Se connecter');
    } finally {
      await french.context.close();
    }
  });

  it('has no accessibility violations (axe-core, WCAG 2.2 AA) on any page', async () => {
    const { context, page } = await newPage({ bypassCSP: true });
    const checked: Record<string, string[]> = {};
    const check = async (name: string) => {
      checked[name] = await axeViolations(page);
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
    };
    try {
      await page.goto((await rp.authorizationRequest()).url);
      await check('login');
      await page.fill('#email', 'browser@example.com');
      await page.fill('#password', 'a wrong password here');
      await page.click('button:text("Sign in")');
      await page.waitForSelector('[role=alert]:not(:empty)');
      await check('login-with-error');
      await page.fill('#password', TEST_PASSWORD);
      await page.click('button:text("Sign in")');
      await page.waitForSelector('h1:text("Allow access?")');
      await check('consent');
      await page.click('button:text("Allow")');
      await page.waitForURL((url) => url.origin === new URL(APP_REDIRECT).origin);
      await page.goto(`${server.issuer}/session/end`);
      await check('logout');
      await page.click('button:text("Sign out")');
      await page.waitForSelector('h1:text("You are signed out")');
      await check('logged-out');
      await page.goto(`${server.issuer}/device`);
      await check('device-code');
      // A device sign-in, for the confirmation and done pages.
      const tv = (await admin(server.databaseUrl, ['client', 'create', '--name', 'Living-room TV', '--public', '--grant-type', 'device_code', '--json'])).json<{ clientId: string }>();
      const device = await oidc.initiateDeviceAuthorization(await oidc.discovery(new URL(server.issuer), tv.clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] }), { scope: 'openid' });
      await page.fill('#user_code', device.user_code);
      await page.click('button:text("Continue")');
      await page.waitForSelector('h1:text("Confirm the device")');
      await check('device-confirm');
      await page.click('button:text("Continue")');
      await page.fill('#email', 'browser@example.com');
      await page.fill('#password', TEST_PASSWORD);
      await page.click('button:text("Sign in")');
      await page.waitForSelector('h1:text("Allow access?")');
      await page.click('button:text("Allow")');
      await page.waitForSelector('h1:text("Device connected")');
      await check('device-done');
      await page.goto(`${server.issuer}/interaction/not-a-real-one`);
      await check('error');
      await page.goto(`${server.issuer}/no-such-page`);
      await check('not-found');
      expect(checked).toEqual(Object.fromEntries(Object.keys(checked).map((k) => [k, []])));
    } finally {
      await context.close();
    }
  });
});
