/** The scopes Latchkey understands and the claims each one releases. */
export const scopeClaims = {
  openid: ['sub'],
  profile: ['name'],
  email: ['email', 'email_verified'],
  roles: ['roles'],
} as const;

export const supportedScopes = ['openid', 'profile', 'email', 'offline_access', 'roles'] as const;

export const defaultClientScope = supportedScopes.join(' ');

/** Plain words for the consent page. */
export const scopeDescriptions: Record<string, string> = {
  openid: 'Confirm who you are',
  profile: 'See your name',
  email: 'See your email address',
  roles: 'See the roles you have been given',
  offline_access: 'Stay signed in when you are away (keep access until you revoke it)',
};
