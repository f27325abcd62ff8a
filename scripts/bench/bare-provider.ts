// The ceiling: bare oidc-provider with its in-memory adapter and the same key types, serving
// client_credentials (JWT for an API), refresh_token (with rotation) and complete password
// sign-ins through the least interaction code that can do one. Started as a child process by
// bench.ts, which names the password to accept in BENCH_PASSWORD; prints one JSON line with what
// the load needs.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { loadConfig } from '../../src/config.ts';
import { createPasswordHasher } from '../../src/accounts/passwords.ts';
import { createCookieKeys } from '../../src/http/cookie-keys.ts';

// What a Latchkey started with the same environment would use: the thread pool's size (set
// before the pool first runs, as src/main.ts does), and argon2id's parameters and concurrency.
const settings = loadConfig(process.env);
process.env.UV_THREADPOOL_SIZE = String(settings.threadPoolSize);
const hasher = createPasswordHasher(settings.argon2);

const refreshTokens = Number(process.argv[2] ?? 16);
const password = process.env.BENCH_PASSWORD ?? '';
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
  // Keys made once, as Latchkey gives it: as secrets, the library would wrap them in a new
  // keygrip for every request that reads its cookies, a cost of the default, not of the protocol.
  cookies: { keys: createCookieKeys([crypto.randomBytes(32).toString('base64url')]) },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id }) }),
  claims: { email: ['email'] },
  scopes: ['openid', 'offline_access', 'email'],
  rotateRefreshToken: true,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
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

// So that a sign-in here costs one verification too, as Latchkey's does.
const passwordHash = await hasher.hash(password);

async function formOf(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

/** Login and consent with nothing but what the protocol needs: no CSRF, throttling, audit or templates. */
async function interaction(req: http.IncomingMessage, res: http.ServerResponse, uid: string, action: string | undefined) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('another interaction');
  const page = (form: string) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Sign in</title>${form}`);
  const finish = async (result: Parameters<Provider['interactionResult']>[2], merge: boolean) =>
    res.writeHead(303, { location: await provider.interactionResult(req, res, result, { mergeWithLastSubmission: merge }) }).end();
  if (req.method === 'GET') {
    return details.prompt.name === 'login'
      ? page(`<form method="post" action="/interaction/${uid}/login"><input name="email" value=""><input name="password" type="password" value=""><button>Sign in</button></form>`)
      : page(`<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>`);
  }
  if (action === 'login') {
    const form = await formOf(req);
    if (!(await hasher.verify(passwordHash, form.get('password') ?? ''))) return res.writeHead(401).end();
    return finish({ login: { accountId: form.get('email') ?? '' } }, false);
  }
  const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
  const missingScope = details.prompt.details.missingOIDCScope as string[] | undefined;
  if (missingScope) grant.addOIDCScope(missingScope.join(' '));
  const missingClaims = details.prompt.details.missingOIDCClaims as string[] | undefined;
  if (missingClaims) grant.addOIDCClaims(missingClaims);
  return finish({ consent: { grantId: await grant.save() } }, true);
}

const serveProvider = provider.callback();
server.on('request', (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/.exec(req.url ?? '');
  if (!match) return serveProvider(req, res);
  interaction(req, res, match[1]!, match[2]).catch((err: Error) => {
    process.stderr.write(`bare oidc-provider interaction failed: ${err.message}\n`);
    if (!res.headersSent) res.writeHead(400);
    res.end();
  });
});

const client = (await provider.Client.find('bench'))!;
const tokens: string[] = [];
for (let i = 0; i < refreshTokens; i++) {
  const grant = new provider.Grant({ accountId: `user-${i}`, clientId: 'bench' });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({ accountId: `user-${i}`, client, grantId, scope: 'openid offline_access', gty: 'authorization_code' });
  tokens.push(await token.save());
}
process.stdout.write(`${JSON.stringify({ issuer, clientId: 'bench', clientSecret: 'bench-secret-bench-secret-bench-secret', redirectUri: 'http://127.0.0.1:1/cb', apis, refreshTokens: tokens })}\n`);
