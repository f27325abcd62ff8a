import type Provider from 'oidc-provider';
import type { StoredSession } from './adapter.ts';

// oidc-provider's Client has this method; its published types leave it out.
interface LogoutNotifier {
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

export interface LogoutNotice {
  clientId: string;
  /** Why the app could not be told, when it could not. */
  error?: string;
}

/**
 * Tells every app that a session signed in to, and that asked for back-channel logout, that the
 * session has ended (OpenID Connect Back-Channel Logout 1.0). oidc-provider does this itself when
 * a person signs out at /session/end; sessions ended another way (the admin script) use the same
 * provider code, so the logout tokens are the same.
 */
export async function notifySessionsEnded(provider: Provider, sessions: StoredSession[]): Promise<LogoutNotice[]> {
  const notices: LogoutNotice[] = [];
  for (const session of sessions) {
    for (const [clientId, authorization] of Object.entries(session.authorizations)) {
      try {
        const client = (await provider.Client.find(clientId)) as unknown as LogoutNotifier | undefined;
        if (!client?.backchannelLogoutUri) continue;
        await client.backchannelLogout(session.accountId, authorization.sid);
        notices.push({ clientId });
      } catch (err) {
        notices.push({ clientId, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return notices;
}
