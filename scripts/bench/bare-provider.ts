// The ceiling: bare oidc-provider with its in-memory adapter and the same key types, serving
// client_credentials (JWT for an API) and refresh_token (with rotation). Started as a child
// process by bench.ts; prints one JSON line with what the load needs.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

const refreshTokens = Number(process.argv[2] ?? 16);
const server = http.createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const rsa = { ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'bare-rs256', alg: 'RS256', use: 'sig' };
const ec = { ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'bare-es256', alg: 'ES256', use: 'sig' };
// One API per key type, as Latchkey's benchmark has.
const apis: Record<string, string> = { RS256: 'https://bench.api', ES256: 'https://bench-es256.api' };
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-bench-secret-bench-secret',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      redirect_uris: ['http://127.0.0.1:1/cb'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [rsa as never, ec as never] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  scopes: ['openid', 'offline_access'],
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: (_ctx, indicator) => {
        const alg = indicator === apis.ES256 ? 'ES256' : 'RS256';
        return { scope: 'bench:read', audience: indicator, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
});
server.on('request', provider.callback());

const client = (await provider.Client.find('bench'))!;
const tokens: string[] = [];
for (let i = 0; i < refreshTokens; i++) {
  const grant = new provider.Grant({ accountId: `user-${i}`, clientId: 'bench' });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({ accountId: `user-${i}`, client, grantId, scope: 'openid offline_access', gty: 'authorization_code' });
  tokens.push(await token.save());
}
process.stdout.write(`${JSON.stringify({ issuer, clientId: 'bench', clientSecret: 'bench-secret-bench-secret-bench-secret', apis, refreshTokens: tokens })}\n`);
