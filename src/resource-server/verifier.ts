import crypto from 'node:crypto';
import { calculateJwkThumbprint, createRemoteJWKSet, EmbeddedJWK, jwtVerify, type JWTPayload } from 'jose';
import { AccessDenied } from './errors.ts';

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  client_id: string;
  scope?: string;
  roles?: string[];
  cnf?: { jkt?: string };
}

export interface VerifierOptions {
  /** Latchkey's issuer URL, e.g. https://id.example.com */
  issuer: string;
  /** This API's identifier, as registered with `admin api create --identifier`. */
  audience: string;
  /** Defaults to the issuer's /jwks. */
  jwksUri?: string;
  /** Seconds of clock skew to accept on exp, iat and nbf. */
  clockTolerance?: number;
}

/** The parts of an HTTP request that authentication needs, in any framework. */
export interface RequestLike {
  method: string;
  /** The full URL the client called (scheme, host and path); used to check DPoP proofs. */
  url: string;
  headers: { authorization?: string | undefined; dpop?: string | undefined };
}

const ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const DPOP_MAX_AGE_SECONDS = 60;

function parseAuthorization(header: string | undefined): { scheme: 'Bearer' | 'DPoP'; token: string } | null {
  if (!header) return null;
  const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
  if (!match) throw new AccessDenied(400, 'invalid_request', 'the Authorization header is malformed');
  const scheme = match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  return { scheme, token: match[2]! };
}

/**
 * Verifies Latchkey access tokens (RFC 9068 JWTs) for one API: signature against the issuer's
 * JWKS (cached; fetched again when a token names an unknown key), issuer, audience, expiry and
 * `typ`. Tokens bound to a DPoP key (RFC 9449) are accepted only with a valid proof.
 */
export function createTokenVerifier(options: VerifierOptions) {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri ?? `${options.issuer.replace(/\/$/, '')}/jwks`), {
    cacheMaxAge: 10 * 60 * 1000,
    cooldownDuration: 30 * 1000,
  });
  const clockTolerance = options.clockTolerance ?? 5;
  // DPoP proof ids seen recently, so one proof cannot be replayed within its lifetime.
  const seenProofs = new Map<string, number>();

  async function verifyToken(token: string, scheme: 'Bearer' | 'DPoP'): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ALGORITHMS,
        clockTolerance,
        requiredClaims: ['sub', 'client_id', 'exp', 'iat', 'jti'],
      });
      return payload as AccessTokenClaims;
    } catch {
      throw new AccessDenied(401, 'invalid_token', 'the access token is invalid, expired or not meant for this API', { scheme });
    }
  }

  async function verifyProof(request: RequestLike, token: string, jkt: string): Promise<void> {
    const proof = request.headers.dpop;
    const refuse = (why: string): never => {
      throw new AccessDenied(401, 'invalid_dpop_proof', why, { scheme: 'DPoP' });
    };
    if (!proof) refuse('a DPoP proof is required for this token');
    let payload: JWTPayload;
    let header: { jwk?: Record<string, unknown> };
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(proof!, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ALGORITHMS }));
    } catch {
      return refuse('the DPoP proof is invalid');
    }
    const now = Math.floor(Date.now() / 1000);
    const target = new URL(request.url);
    const htu = `${target.origin}${target.pathname}`;
    const ath = crypto.createHash('sha256').update(token).digest('base64url');
    if (payload.htm !== request.method.toUpperCase() || payload.htu !== htu) refuse('the DPoP proof is for another request');
    if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > DPOP_MAX_AGE_SECONDS) refuse('the DPoP proof is too old');
    if (payload.ath !== ath) refuse('the DPoP proof is for another access token');
    if ((await calculateJwkThumbprint(header.jwk as Parameters<typeof calculateJwkThumbprint>[0])) !== jkt) {
      refuse('the DPoP proof is signed with another key than the token is bound to');
    }
    if (typeof payload.jti !== 'string' || seenProofs.has(payload.jti)) refuse('the DPoP proof was already used');
    for (const [jti, expires] of seenProofs) if (expires < now) seenProofs.delete(jti);
    seenProofs.set(payload.jti as string, now + DPOP_MAX_AGE_SECONDS);
  }

  return {
    /** Verifies a bare access token (no DPoP); throws AccessDenied. */
    verifyToken: (token: string) => verifyToken(token, 'Bearer'),

    /** Authenticates a request; returns the token's claims or throws AccessDenied. */
    async authenticate(request: RequestLike): Promise<AccessTokenClaims> {
      const credentials = parseAuthorization(request.headers.authorization);
      if (!credentials) throw new AccessDenied(401, undefined, 'an access token is required');
      const claims = await verifyToken(credentials.token, credentials.scheme);
      const jkt = claims.cnf?.jkt;
      if (jkt) {
        // RFC 9449 §7.2: a DPoP-bound token presented as a plain bearer token is refused.
        if (credentials.scheme !== 'DPoP') throw new AccessDenied(401, 'invalid_token', 'this token is DPoP-bound; send it with a DPoP proof', { scheme: 'DPoP' });
        await verifyProof(request, credentials.token, jkt);
      } else if (credentials.scheme === 'DPoP') {
        throw new AccessDenied(401, 'invalid_token', 'this token is not DPoP-bound; send it as a Bearer token');
      }
      return claims;
    },
  };
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>;
