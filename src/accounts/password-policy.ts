import { isCommonPassword } from './common-passwords.ts';

/**
 * NIST SP 800-63B §5.1.1.2: length over composition, long passphrases allowed, and no password
 * that is commonly used, breached, or derived from the service or the account.
 */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;
const SERVICE_NAME = 'latchkey';

/** Returns why a password is refused, or null when it is acceptable. */
export function passwordProblem(password: string, context: { email?: string } = {}): string | null {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (length > MAX_PASSWORD_LENGTH) return `password must be at most ${MAX_PASSWORD_LENGTH} characters`;
  if (password.includes('\0')) return 'password must not contain a NUL character';
  const lowered = password.toLowerCase();
  if (context.email && (lowered === context.email.toLowerCase() || lowered === context.email.split('@')[0]?.toLowerCase())) {
    return 'password must not be the email address';
  }
  if (new Set(password).size === 1) return 'password must not repeat a single character';
  if (lowered.replace(/[^a-z]/g, '').includes(SERVICE_NAME)) return 'password must not contain the name of the service';
  if (isCommonPassword(password, MIN_PASSWORD_LENGTH)) return 'password is on a list of commonly used or breached passwords; choose another';
  return null;
}
