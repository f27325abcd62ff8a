/** Emails are compared case-insensitively; they are stored trimmed and lower-cased. */
export function normalizeEmail(raw: string): string {
  return raw.trim().toLowerCase();
}

// Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
// Deliverability is proven by mail, not by a regular expression.
export function isPlausibleEmail(email: string): boolean {
  return email.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email);
}
