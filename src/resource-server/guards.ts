import { AccessDenied } from './errors.ts';
import type { AccessTokenClaims } from './verifier.ts';

/** Passes when the token was granted every one of these scopes; otherwise 403 insufficient_scope. */
export function requireScope(claims: AccessTokenClaims, ...scopes: string[]): void {
  const granted = new Set((claims.scope ?? '').split(' '));
  const missing = scopes.filter((s) => !granted.has(s));
  if (missing.length) {
    throw new AccessDenied(403, 'insufficient_scope', `the access token lacks scope ${missing.join(' ')}`, { requiredScope: scopes.join(' ') });
  }
}

/** Passes when the token's subject has at least one of these roles; otherwise 403. */
export function requireRole(claims: AccessTokenClaims, ...roles: string[]): void {
  const held = new Set(Array.isArray(claims.roles) ? claims.roles : []);
  if (!roles.some((r) => held.has(r))) {
    throw new AccessDenied(403, 'insufficient_scope', `this requires one of the roles ${roles.join(', ')}`);
  }
}
