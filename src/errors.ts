export type DomainErrorCode = 'invalid_input' | 'not_found' | 'conflict' | 'weak_password';

/** A refusal the caller caused (bad input, unknown name, duplicate); its message is safe to show. */
export class DomainError extends Error {
  readonly code: DomainErrorCode;

  constructor(code: DomainErrorCode, message: string) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
  }
}
