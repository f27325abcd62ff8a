/** The scopes Latchkey understands and the claims each one releases. */
export const scopeClaims = {
  openid: ['sub'],
  profile: ['name'],
  email: ['email', 'email_verified'],
  roles: ['roles'],
} as const;

export const supportedScopes = ['openid', 'profile', 'email', 'offline_access', 'roles'] as const;

export const defaultClientScope = supportedScopes.join(' ');
