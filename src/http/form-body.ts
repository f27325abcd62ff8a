import type { Context } from 'koa';
import { HttpError } from './http-error.ts';

const LIMIT_BYTES = 16 * 1024;

/** Reads an application/x-www-form-urlencoded body of at most 16 KiB; the login forms need far less. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new HttpError(415, 'error.unsupportedForm.title', 'error.unsupportedForm.message');
  }
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > LIMIT_BYTES) throw new HttpError(413, 'error.tooLarge.title', 'error.tooLarge.message');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > LIMIT_BYTES) throw new HttpError(413, 'error.tooLarge.title', 'error.tooLarge.message');
    chunks.push(chunk);
  }
  const form: Record<string, string> = Object.create(null);
  for (const [key, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    // First occurrence wins: a repeated field must not let a second value slip past a check.
    if (!Object.hasOwn(form, key)) form[key] = value;
  }
  return form;
}
