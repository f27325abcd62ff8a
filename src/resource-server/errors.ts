export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof';

/**
 * Why a request to a protected API was refused, with what RFC 6750 §3 says to answer:
 * 401 with a WWW-Authenticate challenge for a missing or bad token, 403 for too little scope.
 */
export class AccessDenied extends Error {
  readonly status: 400 | 401 | 403;
  /** Absent when the request carried no credentials at all (RFC 6750 §3.1). */
  readonly error: BearerErrorCode | undefined;
  readonly scheme: 'Bearer' | 'DPoP';
  readonly requiredScope: string | undefined;

  constructor(
    status: 400 | 401 | 403,
    error: BearerErrorCode | undefined,
    description: string,
    options: { scheme?: 'Bearer' | 'DPoP'; requiredScope?: string } = {},
  ) {
    super(description);
    this.name = 'AccessDenied';
    this.status = status;
    this.error = error;
    this.scheme = options.scheme ?? 'Bearer';
    this.requiredScope = options.requiredScope;
  }

  /** The WWW-Authenticate header value. */
  get challenge(): string {
    const params = [`realm="api"`];
    if (this.error) params.push(`error="${this.error}"`, `error_description="${this.message.replace(/["\\]/g, '')}"`);
    if (this.requiredScope) params.push(`scope="${this.requiredScope}"`);
    if (this.scheme === 'DPoP') params.push('algs="ES256 EdDSA RS256 PS256"');
    return `${this.scheme} ${params.join(', ')}`;
  }

  /** A JSON body for the response, in the OAuth error format. */
  get body(): { error: string; error_description: string } {
    return { error: this.error ?? 'invalid_request', error_description: this.message };
  }
}
