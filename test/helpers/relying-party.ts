import * as oidc from 'openid-client';
import { asLanding, asPage, Browser } from './browser.ts';
import { registerApp } from './admin.ts';

export const REDIRECT_URI = 'http://127.0.0.1:1/callback';

export interface AuthorizationRequest {
  url: string;
  verifier: string;
  nonce: string;
  state: string;
}

/** A relying party built on openid-client, as a real app would use Latchkey. */
export class RelyingParty {
  readonly config: oidc.Configuration;
  readonly redirectUri: string;

  private constructor(config: oidc.Configuration, redirectUri: string) {
    this.config = config;
    this.redirectUri = redirectUri;
  }

  static async discover(
    issuer: string,
    clientId: string,
    clientSecret: string | null,
    options: { redirectUri?: string; auth?: 'basic' | 'post' } = {},
  ): Promise<RelyingParty> {
    const auth = clientSecret === null
      ? oidc.None()
      : options.auth === 'post'
        ? oidc.ClientSecretPost(clientSecret)
        : oidc.ClientSecretBasic(clientSecret);
    const config = await oidc.discovery(new URL(issuer), clientId, undefined, auth, { execute: [oidc.allowInsecureRequests] });
    return new RelyingParty(config, options.redirectUri ?? REDIRECT_URI);
  }

  async authorizationRequest(scope = 'openid profile email', extra: Record<string, string> = {}): Promise<AuthorizationRequest> {
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(this.config, {
      redirect_uri: this.redirectUri,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      nonce,
      state,
      // OpenID Connect Core §11: offline_access is honoured only with prompt=consent.
      ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
      ...extra,
    });
    return { url: url.href, verifier, nonce, state };
  }

  newBrowser(): Browser {
    // Everything on the app's origin belongs to the app: callbacks and post-logout pages.
    return new Browser(`${new URL(this.redirectUri).origin}/`);
  }

  /** Signs a person in through the login and consent forms; returns where the browser landed. */
  async authorize(browser: Browser, request: AuthorizationRequest, email: string, password: string): Promise<URL> {
    const login = asPage(await browser.request(request.url));
    let result = await browser.submit(login, /\/login$/, { email, password });
    if (!('callback' in result)) result = await browser.submit(asPage(result), /\/confirm$/);
    return asLanding(result);
  }

  exchange(callback: URL, request: AuthorizationRequest) {
    return oidc.authorizationCodeGrant(this.config, callback, {
      pkceCodeVerifier: request.verifier,
      expectedNonce: request.nonce,
      expectedState: request.state,
      idTokenExpected: true,
    });
  }

  async signIn(email: string, password: string, scope?: string) {
    const request = await this.authorizationRequest(scope);
    const callback = await this.authorize(this.newBrowser(), request, email, password);
    return this.exchange(callback, request);
  }
}

/** Registers an app (a confidential client) on a test server and returns its relying party. */
export async function registerRelyingParty(server: { databaseUrl: string; issuer: string }): Promise<RelyingParty> {
  const app = await registerApp(server.databaseUrl, REDIRECT_URI);
  return RelyingParty.discover(server.issuer, app.clientId, app.clientSecret);
}
