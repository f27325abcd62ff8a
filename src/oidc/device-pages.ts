import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RenderPage } from '../interactions/render.ts';

interface ProviderForm {
  action: string;
  xsrf: string;
}

/**
 * oidc-provider hands the device pages a ready-made form. Ours keeps its action and anti-forgery
 * token but lays the form out itself: the provider's input carries an inline event handler,
 * which the Content-Security-Policy forbids, and has no label.
 */
function readProviderForm(form: string): ProviderForm {
  const action = /action="([^"]+)"/.exec(form)?.[1];
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(form)?.[1];
  if (!action || !xsrf) throw new Error('unexpected device form from oidc-provider');
  return { action, xsrf };
}

function clientNameOf(ctx: KoaContextWithOIDC): string {
  return ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? 'the device';
}

export function createDevicePages(renderPage: RenderPage) {
  return {
    async userCodeInputSource(ctx: KoaContextWithOIDC, form: string, _out?: unknown, err?: { userCode?: string; name?: string }) {
      let error: string | null = null;
      if (err && (err.userCode || err.name === 'NoCodeError')) error = 'That code is not correct or has expired. Check the code on your device and try again.';
      else if (err && err.name === 'AbortedError') error = 'The sign-in on the device was cancelled.';
      else if (err) error = 'The code could not be checked. Please try again.';
      ctx.type = 'html';
      ctx.body = await renderPage('device-code', {
        title: 'Connect a device',
        ...readProviderForm(form),
        userCode: err?.userCode ?? '',
        error,
      });
    },
    async userCodeConfirmSource(ctx: KoaContextWithOIDC, form: string, _client: unknown, _deviceInfo: unknown, userCode: string) {
      ctx.type = 'html';
      ctx.body = await renderPage('device-confirm', {
        title: 'Confirm the device',
        ...readProviderForm(form),
        clientName: clientNameOf(ctx),
        userCode,
      });
    },
    async successSource(ctx: KoaContextWithOIDC) {
      ctx.type = 'html';
      ctx.body = await renderPage('device-done', { title: 'Device connected', clientName: clientNameOf(ctx) });
    },
  };
}
