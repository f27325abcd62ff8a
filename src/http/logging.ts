import crypto from 'node:crypto';
import type { Context, Next } from 'koa';
import pino from 'pino';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  event?: string;
  [key: string]: unknown;
}

export type Logger = (entry: LogEntry) => void;

/** Log lines are written once this many bytes of them have gathered... */
export const LOG_BATCH_BYTES = 4096;
/** ...and otherwise within this many milliseconds. */
export const LOG_FLUSH_MS = 100;

/**
 * Standard output, written off the event loop (by a thread of libuv's pool, which waits
 * while stdout is not taking lines). Each write is a job handed to that pool and back, which
 * under load cost a token request more than its line did, so lines go out in batches (see
 * LOG_BATCH_BYTES and LOG_FLUSH_MS; whatever is held is written at exit). Lines wait in memory
 * while whatever reads stdout (a container runtime, journald, a pipe) is not taking them; past
 * `maxBytes` they are dropped rather than held without bound, and once writing resumes one
 * warning says how many were lost.
 *
 * @param fd where the lines go: standard output, or a file a test reads.
 */
export function stdoutDestination(maxBytes: number, fd = 1): ReturnType<typeof pino.destination> {
  const destination = pino.destination({
    dest: fd,
    maxLength: maxBytes,
    // A batch must leave room in what may be held, or lines would be dropped while stdout keeps up.
    minLength: Math.min(LOG_BATCH_BYTES, Math.floor(maxBytes / 4)),
  });
  // Lines held are written within LOG_FLUSH_MS of a line or of a write, rather than on a fixed
  // period: a periodic flush writes even when nothing is held (an empty write, through the
  // pool), ten times a second in an idle process. A flush due while a write is out does
  // nothing, so each write that wrote something makes sure another is due after it; an empty
  // one does not, and the flushes stop once everything held is written.
  let flushDue: NodeJS.Timeout | undefined;
  const flushHeld = () => {
    flushDue = undefined;
    try {
      destination.flush();
    } catch {
      // Closed meanwhile (it throws only then): what it held was written as it closed.
    }
  };
  const flushSoon = () => {
    flushDue ??= setTimeout(flushHeld, LOG_FLUSH_MS).unref();
  };
  const write = destination.write.bind(destination);
  destination.write = (data: string) => {
    const held = write(data);
    flushSoon();
    return held;
  };
  destination.on('write', (bytes: number) => {
    if (bytes > 0) flushSoon();
  });
  let dropped = 0;
  let sendingNotice = false;
  let noticeDropped = false;
  let noticeScheduled = false;
  // Drops are reported synchronously, from inside the write that did not fit.
  destination.on('drop', () => {
    if (sendingNotice) noticeDropped = true;
    else dropped++;
  });
  function sendNotice() {
    noticeScheduled = false;
    if (!dropped) return;
    sendingNotice = true;
    noticeDropped = false;
    destination.write(`{"level":"warn","time":"${new Date().toISOString()}","event":"log_lines_dropped","count":${dropped}}\n`);
    sendingNotice = false;
    // A notice that did not fit either goes after the next write, with the count so far.
    if (!noticeDropped) dropped = 0;
  }
  // 'write' is emitted before the written bytes leave the count of those held, so the notice
  // waits for that: by the next turn of the event loop there is room for it.
  destination.on('write', () => {
    if (!dropped || noticeScheduled) return;
    noticeScheduled = true;
    setImmediate(sendNotice);
  });
  return destination;
}

/**
 * JSON lines on stdout through pino. Callers log identifiers, routes and outcomes only; the
 * redaction list is a second line of defence should a secret-bearing field ever be passed.
 */
export function createPinoLogger(level: string, destination: pino.DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['password', 'client_secret', 'code', 'code_verifier', 'refresh_token', 'access_token', 'id_token', 'token', 'authorization', 'cookie', '*.password', '*.authorization', '*.cookie'],
        censor: '[redacted]',
      },
    },
    destination,
  );
  const writeRequestLine = logger.isLevelEnabled('info') ? requestLineWriter(destination) : () => {};
  return (entry) => {
    if (entry.event === 'request') return writeRequestLine(entry as unknown as RequestLine);
    const { level: entryLevel, ...fields } = entry;
    logger[entryLevel](fields);
  };
}

interface RequestLine {
  requestId: string;
  method: string;
  path: string;
  status: number;
  ms: number;
}

/**
 * ISO 8601 time stamps as Date's toISOString writes them, for epoch milliseconds. Formatting a
 * date was a fifth of what a request line cost, so the part up to the second is formatted once
 * a second and only the milliseconds after it.
 */
export function isoTimeStamps(): (epochMs: number) => string {
  let second = Number.NaN;
  let prefix = '';
  return (epochMs) => {
    const ms = epochMs % 1000;
    if (epochMs - ms !== second) {
      second = epochMs - ms;
      // "2026-01-31T12:34:56." from "2026-01-31T12:34:56.000Z"
      prefix = new Date(second).toISOString().slice(0, -4);
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  };
}

/**
 * The line logged for every request has a fixed shape and carries no secret (requestLogging
 * builds it), so it is written as pino would write it without going through pino: its
 * serialisation and time stamp were about 10 µs, 2–3 % of a token request's CPU.
 */
function requestLineWriter(destination: pino.DestinationStream): (line: RequestLine) => void {
  const timeStamp = isoTimeStamps();
  return ({ requestId, method, path, status, ms }) => {
    const stamp = timeStamp(Date.now());
    destination.write(
      `{"level":"info","time":"${stamp}","event":"request","requestId":${JSON.stringify(String(requestId))},"method":${JSON.stringify(String(method))},"path":${JSON.stringify(String(path))},"status":${Number(status)},"ms":${Number(ms)}}\n`,
    );
  };
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
    const incoming = ctx.req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && INCOMING_ID.test(incoming) ? incoming : crypto.randomUUID();
    ctx.state.requestId = requestId;
    ctx.res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log({ level: 'info', event: 'request', requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 });
    }
  };
}
