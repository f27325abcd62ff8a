import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, type JWK } from 'jose';
import { AccessDenied, createTokenVerifier, requireRole, requireScope } from '../src/resource-server/index.ts';

// A stand-in issuer whose JWKS the test controls, to see the verifier's caching and key checks.
let jwks: { keys: JWK[] } = { keys: [] };
let jwksFetches = 0;
let issuer: string;
let server: http.Server;
const AUDIENCE = 'https://api.example.com';

async function newKey(kid: string) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function sign(key: crypto.KeyObject, kid: string, claims: { iss?: string; aud?: string } = {}, typ = 'at+jwt') {
  return new SignJWT({ client_id: 'app', scope: 'invoices:read', roles: ['viewer'] })
    .setProtectedHeader({ alg: 'RS256', kid, typ })
    .setIssuer(claims.iss ?? issuer)
    .setAudience(claims.aud ?? AUDIENCE)
    .setSubject('user-1')
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime('5m')
    .sign(key);
}

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const request = (token: string) => ({ method: 'GET', url: `${AUDIENCE}/x`, headers: { authorization: `Bearer ${token}` } });

describe('the resource-server verifier', () => {
  it('caches the JWKS and fetches it again only for an unknown kid', async () => {
    const first = await newKey('k1');
    jwks = { keys: [first.jwk] };
    const verifier = createTokenVerifier({ issuer, audience: AUDIENCE });
    jwksFetches = 0;
    await verifier.authenticate(request(await sign(first.privateKey, 'k1')));
    await verifier.authenticate(request(await sign(first.privateKey, 'k1')));
    expect(jwksFetches).toBe(1);

    // A new key is picked up once the short cool-down after the last fetch has passed; the
    // cool-down stops a flood of unknown kids from turning into a flood of JWKS fetches.
    const second = await newKey('k2');
    jwks = { keys: [second.jwk, first.jwk] };
    const token = await sign(second.privateKey, 'k2');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 31_000);
    try {
      const claims = await verifier.authenticate(request(token));
      expect(claims.sub).toBe('user-1');
      expect(jwksFetches).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a token of the wrong type, issuer or audience, or signed by a stranger', async () => {
    const key = await newKey('k3');
    jwks = { keys: [key.jwk] };
    const verifier = createTokenVerifier({ issuer, audience: AUDIENCE });
    const refusals = [
      await sign(key.privateKey, 'k3', {}, 'JWT'),
      await sign(key.privateKey, 'k3', { iss: 'https://other.example.com' }),
      await sign(key.privateKey, 'k3', { aud: 'https://elsewhere.example.com' }),
      await sign((await newKey('k3')).privateKey, 'k3'),
    ];
    for (const [i, token] of refusals.entries()) {
      const err = await verifier.authenticate(request(token)).catch((e: unknown) => e);
      expect(err, `refusal ${i}`).toBeInstanceOf(AccessDenied);
      expect((err as AccessDenied).status).toBe(401);
      expect((err as AccessDenied).challenge).toMatch(/^Bearer realm="api", error="invalid_token"/);
    }
  });

  it('guards scopes and roles', async () => {
    const key = await newKey('k4');
    jwks = { keys: [key.jwk] };
    const claims = await createTokenVerifier({ issuer, audience: AUDIENCE }).verifyToken(await sign(key.privateKey, 'k4'));
    expect(() => requireScope(claims, 'invoices:read')).not.toThrow();
    expect(() => requireScope(claims, 'invoices:read', 'invoices:write')).toThrow(AccessDenied);
    expect(() => requireRole(claims, 'admin', 'viewer')).not.toThrow();
    const denied = (() => {
      try {
        requireRole(claims, 'admin');
      } catch (e) {
        return e as AccessDenied;
      }
    })();
    expect(denied?.status).toBe(403);
    expect(denied?.body.error).toBe('insufficient_scope');
  });
});
