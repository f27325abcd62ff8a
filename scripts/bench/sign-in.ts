import crypto from 'node:crypto';

export interface App {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** A cookie jar by name: enough for one sign-in, whose cookies all have distinct names. */
class Jar {
  private cookies = new Map<string, string>();
  take(response: Response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const eq = pair!.indexOf('=');
      const expired = /expires=Thu, 01 Jan 1970/i.test(header);
      if (expired) this.cookies.delete(pair!.slice(0, eq));
      else this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function formOf(html: string, action: RegExp): { action: string; fields: Record<string, string> } {
  for (const form of html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    if (!action.test(form[1]!)) continue;
    const fields: Record<string, string> = {};
    for (const input of form[2]!.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[input[1]!] = input[2]!;
    return { action: form[1]!.replaceAll('&amp;', '&'), fields };
  }
  throw new Error(`no form ${action} in page`);
}

/**
 * One complete password sign-in as a browser and an app do it: authorization request, login
 * form, consent form, code exchange. Returns the token response.
 */
export async function signIn(app: App, email: string, password: string, scope = 'openid email'): Promise<Record<string, string>> {
  const jar = new Jar();
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const params = new URLSearchParams({
    client_id: app.clientId,
    response_type: 'code',
    scope,
    redirect_uri: app.redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: crypto.randomBytes(8).toString('hex'),
    ...(scope.includes('offline_access') ? { prompt: 'consent' } : {}),
  });
  let url = new URL(`/auth?${params}`, app.issuer);
  let method = 'GET';
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 20; step++) {
    if (url.href.startsWith(app.redirectUri)) {
      const code = url.searchParams.get('code');
      if (!code) throw new Error(`no code: ${url.search}`);
      const token = await fetch(new URL('/token', app.issuer), {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier }),
      });
      if (token.status !== 200) throw new Error(`token exchange ${token.status}`);
      return (await token.json()) as Record<string, string>;
    }
    const response = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    jar.take(response);
    const location = response.headers.get('location');
    if (location) {
      await response.arrayBuffer();
      url = new URL(location, url);
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`${url.pathname} answered ${response.status}`);
    const extra: Record<string, string> = /\/login"/.test(html) ? { email, password } : {};
    const next = formOf(html, extra.email ? /\/login$/ : /\/confirm$/);
    url = new URL(next.action, url);
    method = 'POST';
    body = new URLSearchParams({ ...next.fields, ...extra });
  }
  throw new Error('sign-in did not finish');
}
