// Errors that mean "the database cannot be reached right now", as opposed to a bug: the
// answer is 503 and a retry, and the pool recovers by itself when the database is back.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);
// PostgreSQL SQLSTATE classes 08 (connection exception) and 57P (operator intervention),
// 53300 (too many connections) and 3D000 (database gone).
const POSTGRES_CODES = /^(08\d{3}|57P0[1-4]|53300|3D000)$/;
const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_FULL']);
const MESSAGES = [/Connection terminated/i, /timeout exceeded when trying to connect/i, /not currently accepting connections/i, /the database system is (starting up|shutting down)/i];

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code) || POSTGRES_CODES.test(code) || SQLITE_CODES.has(code) || code.startsWith('SQLITE_IOERR')) return true;
    if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e!.message as string))) return true;
  }
  return false;
}
