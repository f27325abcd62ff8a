/**
 * What an API imports to accept Latchkey access tokens. Depends on `jose` only, not on the rest
 * of Latchkey, so an API can copy or vendor this folder.
 */
export { AccessDenied, type BearerErrorCode } from './errors.ts';
export { createTokenVerifier, type AccessTokenClaims, type RequestLike, type TokenVerifier, type VerifierOptions } from './verifier.ts';
export { requireRole, requireScope } from './guards.ts';
export { protect, type ProtectOptions } from './koa.ts';
