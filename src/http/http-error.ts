import type { MessageKey } from '../i18n/catalogue.ts';

/** An error our routes raise on purpose: its status and messages (keys of the catalogue) are shown as they are. */
export class HttpError extends Error {
  readonly status: number;
  readonly title: MessageKey;
  readonly messageKey: MessageKey;
  readonly headers: Record<string, string>;
  /** Values for the messages' placeholders, and a way back (a URL on this server). */
  readonly vars: Record<string, string>;
  readonly backTo: string | null;

  constructor(
    status: number,
    title: MessageKey,
    message: MessageKey,
    headers: Record<string, string> = {},
    extra: { vars?: Record<string, string>; backTo?: string } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.title = title;
    this.messageKey = message;
    this.headers = headers;
    this.vars = extra.vars ?? {};
    this.backTo = extra.backTo ?? null;
  }
}
