// A row another transaction wrote first: PostgreSQL's unique_violation, SQLite's constraint
// errors on a unique index or primary key.
const CODES = new Set(['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

export function isUniqueViolation(err: unknown): boolean {
  return CODES.has(String((err as { code?: unknown } | undefined)?.code ?? ''));
}
