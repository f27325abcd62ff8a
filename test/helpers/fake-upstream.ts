import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

/** What the fake upstream knows when it mints an ID token for a code exchange. */
export interface MintContext {
  issuer: string;
  clientId: string;
  nonce: string;
  now: number;
  /** Signs claims with the key the upstream publishes. */
  sign(claims: JWTPayload): Promise<string>;
}

export interface FakeUpstream {
  issuer: string;
  /** Decides the ID token the next code exchanges return; by default a valid one. */
  mintWith(mint: (context: MintContext) => Promise<string>): void;
  close(): Promise<void>;
}

/** The ID token a well-behaved provider returns. */
export const validIdToken = (c: MintContext, subject = 'fake-subject') =>
  c.sign({ iss: c.issuer, aud: c.clientId, sub: subject, nonce: c.nonce, iat: c.now, exp: c.now + 300 });

/**
 * An OpenID provider that answers at once and puts whatever a test asks for in its ID tokens,
 * which a real provider would never do: expired, for someone else, unsigned. Its authorization
 * endpoint sends the browser straight back with a code.
 */
export async function startFakeUpstream(): Promise<FakeUpstream> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'fake-1', alg: 'RS256', use: 'sig' };
  const nonces = new Map<string, { nonce: string; clientId: string }>();
  let mint: (context: MintContext) => Promise<string> = (c) => validIdToken(c);
  let issuer = '';

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const code = `code-${nonces.size + 1}`;
      nonces.set(code, { nonce: url.searchParams.get('nonce') ?? '', clientId: url.searchParams.get('client_id') ?? '' });
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => {
        const issued = nonces.get(new URLSearchParams(body).get('code') ?? '');
        if (!issued) return json(res, 400, { error: 'invalid_grant' });
        const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid }).sign(privateKey);
        mint({ issuer, clientId: issued.clientId, nonce: issued.nonce, now: Math.floor(Date.now() / 1000), sign }).then(
          (idToken) => json(res, 200, { access_token: 'fake-access-token', token_type: 'Bearer', expires_in: 300, id_token: idToken }),
          () => json(res, 500, { error: 'server_error' }),
        );
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    mintWith: (next) => (mint = next),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
