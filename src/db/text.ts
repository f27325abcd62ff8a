// PostgreSQL text cannot hold NUL characters, and refuses a query that contains one (SQLite
// accepts them). Request values with a NUL can never match a stored value, so look-ups say
// "not found", and values written from requests lose the NULs.

/** Whether a value from a request could equal anything stored. */
export function canMatchStored(value: string): boolean {
  return !value.includes('\u0000');
}

/** A request value made safe to store. */
export function storable(value: string): string {
  return value.replaceAll('\u0000', '');
}
