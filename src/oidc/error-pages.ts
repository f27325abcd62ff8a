import type { MessageKey } from '../i18n/catalogue.ts';

export interface ErrorPage {
  title: MessageKey;
  message: MessageKey | null;
  /** The provider's own description, shown for request errors, where it names what the app got wrong. */
  detail: string | null;
}

/** What a person sees when a sign-in cannot go on; server errors say nothing internal. */
export function errorPageFor(error: string, description: string | undefined): ErrorPage {
  switch (error) {
    case 'server_error':
      return { title: 'error.server.title', message: 'error.server.message', detail: null };
    case 'invalid_client':
      return { title: 'error.unknownClient.title', message: 'error.unknownClient.message', detail: null };
    case 'invalid_redirect_uri':
      return { title: 'error.redirectUri.title', message: 'error.redirectUri.message', detail: null };
    case 'session_not_found':
    case 'invalid_interaction':
      return { title: 'error.expired.title', message: 'error.expired.message', detail: null };
    default:
      return { title: 'error.refused.title', message: null, detail: description ?? error };
  }
}
