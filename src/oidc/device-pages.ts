import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RenderPage } from '../interactions/render.ts';
import type { MessageKey } from '../i18n/catalogue.ts';

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
      let error: MessageKey | null = null;
      if (err && (err.userCode || err.name === 'NoCodeError')) error = 'device.wrongCode';
      else if (err && err.name === 'AbortedError') error = 'device.aborted';
      else if (err) error = 'device.failed';
      await renderPage(ctx, 'device-code', {
        title: 'device.title',
        ...readProviderForm(form),
        userCode: err?.userCode ?? '',
        error,
      });
    },
    async userCodeConfirmSource(ctx: KoaContextWithOIDC, form: string, _client: unknown, _deviceInfo: unknown, userCode: string) {
      await renderPage(ctx, 'device-confirm', {
        title: 'deviceConfirm.title',
        ...readProviderForm(form),
        clientName: clientNameOf(ctx),
        userCode,
      });
    },
    async successSource(ctx: KoaContextWithOIDC) {
      await renderPage(ctx, 'device-done', { title: 'deviceDone.title', clientName: clientNameOf(ctx) });
    },
  };
}
