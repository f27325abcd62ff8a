import crypto from 'node:crypto';

/** 256 bits from the CSPRNG: long enough that a fast hash is as safe to store as a slow one. */
export function generateClientSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Secrets are stored only as this digest. A single SHA-256 is the right tool for a random
 * 256-bit value (no dictionary to attack); a slow password hash would cap the token endpoint
 * at the hash rate.
 */
export function digestClientSecret(secret: string): string {
  return crypto.hash('sha256', secret, 'base64url');
}

export function clientSecretMatches(storedDigest: string, presented: string): boolean {
  const expected = Buffer.from(storedDigest, 'base64url');
  const actual = crypto.hash('sha256', presented, 'buffer');
  return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
}
