import type { MessageKey } from '../i18n/catalogue.ts';

/** An error our routes raise on purpose: its status and messages (keys of the catalogue) are shown as they are. */
export class HttpError extends Error {
  readonly status: number;
  readonly title: MessageKey;
  readonly messageKey: MessageKey;
  readonly headers: Record<string, string>;

  constructor(status: number, title: MessageKey, message: MessageKey, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.title = title;
    this.messageKey = message;
    this.headers = headers;
  }
}
