import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { isPostgresUrl } from '../db/database.ts';

/** Seals secrets for storage with AES-256-GCM under the key-encryption key. */
export interface SecretBox {
  /** `context` binds the ciphertext to its row (e.g. `key:<kid>`), so it cannot be moved to another. */
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

const VERSION = 'v1';

export function createSecretBox(secret: string): SecretBox {
  const key = Buffer.from(crypto.hkdfSync('sha256', secret, 'latchkey', 'key-encryption v1', 32));
  return {
    seal(plaintext, context) {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    },
    open(sealed, context) {
      const [version, iv, body, tag] = sealed.split('.');
      if (version !== VERSION || !iv || !body || !tag) throw new Error('not a sealed value');
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new Error('a sealed secret could not be opened: LATCHKEY_SECRET is not the one it was sealed with');
      }
    },
  };
}

/** Where a development secret is kept: beside the SQLite file, or under db/ for PostgreSQL. */
export function developmentSecretFile(config: Config): string {
  const dir = isPostgresUrl(config.databaseUrl) ? 'db' : path.dirname(path.resolve(config.databaseUrl));
  return path.join(dir, 'latchkey.secret');
}

/**
 * The key-encryption secret from the settings, or outside production one generated on first
 * use and kept in a file readable only by its owner, so that restarts can open what was sealed.
 */
export function resolveSecretBox(config: Config, warn: (message: string) => void): SecretBox {
  if (config.keyEncryptionSecret) return createSecretBox(config.keyEncryptionSecret);
  const file = developmentSecretFile(config);
  const read = () => fs.readFileSync(file, 'utf8').trim();
  let secret: string;
  try {
    secret = read();
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, `${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it first; use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    secret = read();
  }
  warn(`LATCHKEY_SECRET is not set: using the development secret in ${file}. Set LATCHKEY_SECRET in production.`);
  return createSecretBox(secret);
}
