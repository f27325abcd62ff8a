import crypto from 'node:crypto';
import type { Context, Next } from 'koa';
import pino from 'pino';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  event?: string;
  [key: string]: unknown;
}

export type Logger = (entry: LogEntry) => void;

/**
 * JSON lines on stdout through pino. Callers log identifiers, routes and outcomes only; the
 * redaction list is a second line of defence should a secret-bearing field ever be passed.
 */
export function createPinoLogger(level: string = 'info', destination: pino.DestinationStream = pino.destination(1)): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const logger = pino(
    {
      ...options,
      redact: {
        paths: ['password', 'client_secret', 'code', 'code_verifier', 'refresh_token', 'access_token', 'id_token', 'token', 'authorization', 'cookie', '*.password', '*.authorization', '*.cookie'],
        censor: '[redacted]',
      },
    },
    destination,
  );
  // The line logged for every request has a fixed shape, built by requestLogging below from
  // values that carry no secret; redacting it cost about 4 % of a token request's CPU.
  const requestLogger = pino(options, destination);
  return ({ level: entryLevel, ...fields }) => (fields.event === 'request' ? requestLogger : logger)[entryLevel](fields);
}

// A request id from the proxy in front is kept when it looks like one; anything else is replaced.
const INCOMING_ID = /^[A-Za-z0-9._-]{8,64}$/;

/**
 * Gives every request an id (X-Request-Id, echoed back) and logs one line when it ends:
 * method, route and path without the query string (which carries codes and states), status
 * and duration.
 */
export function requestLogging(log: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = INCOMING_ID.test(incoming) ? incoming : crypto.randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log({ level: 'info', event: 'request', requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 });
    }
  };
}
