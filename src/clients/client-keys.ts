import crypto from 'node:crypto';
import { DomainError } from '../errors.ts';

export interface PublicJwks {
  keys: Record<string, unknown>[];
}

// Members that only a private or symmetric key has: a client must never hand us those.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Parses a client's JWKS and keeps it only if every key is a usable public signing key. */
export function checkPublicJwks(text: string): PublicJwks {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DomainError('invalid_input', 'the JWKS file is not valid JSON');
  }
  const keys = (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new DomainError('invalid_input', 'the JWKS must be an object with a non-empty "keys" array');
  }
  if (keys.length > 20) throw new DomainError('invalid_input', 'the JWKS may hold at most 20 keys');
  for (const [i, key] of keys.entries()) {
    if (typeof key !== 'object' || key === null) throw new DomainError('invalid_input', `JWKS key ${i} is not an object`);
    const jwk = key as Record<string, unknown>;
    if (PRIVATE_MEMBERS.some((m) => m in jwk)) {
      throw new DomainError('invalid_input', `JWKS key ${i} contains private key material; register only the public key`);
    }
    if (!['RSA', 'EC', 'OKP'].includes(String(jwk.kty))) {
      throw new DomainError('invalid_input', `JWKS key ${i} has unsupported kty ${JSON.stringify(jwk.kty)} (RSA, EC or OKP)`);
    }
    try {
      crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
    } catch {
      throw new DomainError('invalid_input', `JWKS key ${i} is not a valid public key`);
    }
  }
  return { keys: keys as Record<string, unknown>[] };
}
