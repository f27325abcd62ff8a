import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Argon2Settings {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
  /** Hashes computed at once; more wait their turn. */
  maxConcurrent: number;
}

export interface TokenSettings {
  /** Seconds; an API's own lifetime overrides it. */
  accessTokenTtl: number;
  /** A refresh token unused for this long expires; each rotation starts it again. */
  refreshTokenIdleTtl: number;
  /** No rotation extends a refresh-token chain past this age. */
  refreshTokenAbsoluteTtl: number;
  /** A refresh token presented again within this many seconds of its first use is not treated as stolen. */
  refreshTokenReuseGrace: number;
  sessionTtl: number;
}

export interface Config {
  production: boolean;
  host: string;
  port: number;
  issuer: string;
  databaseUrl: string;
  argon2: Argon2Settings;
  /**
   * Threads in Node's pool (UV_THREADPOOL_SIZE), which runs password hashes and token
   * signatures; main.ts hands it to libuv before the pool starts.
   */
  threadPoolSize: number;
  trustProxy: boolean;
  tokens: TokenSettings;
  /**
   * Whether Latchkey may call apps on loopback and private addresses (back-channel logout,
   * client JWKS). Off by default: oidc-provider refuses them to stop server-side request forgery.
   */
  allowPrivateNetworkFetch: boolean;
  /**
   * The key-encryption secret that seals private keys and recoverable client secrets at rest.
   * Null only outside production, where one is generated and kept next to the database.
   */
  keyEncryptionSecret: string | null;
  /** How often expired provider rows are purged, in seconds. */
  purgeIntervalSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Log bytes held while stdout is not taking them; past this, lines are dropped and counted. */
  logBufferBytes: number;
  throttling: ThrottleSettings;
  auditRetentionDays: number;
  metrics: MetricsSettings;
  /** How long in-flight requests may take to finish after SIGTERM. */
  shutdownTimeoutSeconds: number;
  keys: KeySettings;
  branding: Branding;
}

export interface KeySettings {
  /** How often each instance re-reads the signing keys, so a rotation reaches all without restart. */
  refreshSeconds: number;
  /** How long a new signing key is published before it signs (admin keys rotate's default). */
  rotationLeadSeconds: number;
  /** How long a replaced key stays published: at least the longest token lifetime. */
  retireAfterSeconds: number;
}

/** Brute-force defence: growing delays, never a permanent lockout an attacker could use. */
export interface ThrottleSettings {
  /** Consecutive failures on one account before it is slowed down. */
  accountThreshold: number;
  /** Failures from one client address, across accounts, before it is slowed down. */
  ipThreshold: number;
  /** The first delay; each further failure doubles it. */
  baseDelaySeconds: number;
  maxDelaySeconds: number;
  /** Failures older than this are forgotten. */
  windowSeconds: number;
}

/** How the pages look: the product's name, logo, colour and a support link. */
export interface Branding {
  productName: string;
  logoUrl: string | null;
  primaryColor: string;
  primaryColorDark: string;
  supportUrl: string | null;
}

export interface MetricsSettings {
  /** Serve /metrics on the main port to callers presenting this bearer token. */
  token: string | null;
  /** Or serve /metrics without a token on a separate port (bound to `host`). */
  port: number | null;
  host: string;
}

export class ConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Record<string, string | undefined>;

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
}

function readIssuer(env: Env, port: number, production: boolean): string {
  const raw = env.ISSUER;
  if (raw === undefined || raw === '') return `http://localhost:${port}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('ISSUER', `must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('ISSUER', `must use https (or http for local development), got ${url.protocol}`);
  }
  // OpenID Connect Discovery 1.0 §3: the issuer has no query or fragment.
  if (url.search || url.hash || raw.includes('#') || url.username || url.password) {
    throw new ConfigError('ISSUER', 'must not contain a query, fragment or credentials');
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (production && url.protocol === 'http:' && !local) {
    throw new ConfigError('ISSUER', 'must use https in production (http is allowed only for localhost)');
  }
  return url.href.replace(/\/$/, '');
}

function readDatabaseUrl(env: Env): string {
  const raw = env.DATABASE_URL;
  if (raw === undefined || raw === '') return path.join('db', 'latchkey.sqlite');
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// URL');
    }
    return raw;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new ConfigError('DATABASE_URL', 'must be a SQLite file path or a postgres:// URL');
  }
  return raw;
}

const MIN_SECRET_LENGTH = 32;

function readKeyEncryptionSecret(env: Env, production: boolean): string | null {
  let secret = env.LATCHKEY_SECRET;
  let name = 'LATCHKEY_SECRET';
  if ((secret === undefined || secret === '') && env.LATCHKEY_SECRET_FILE) {
    name = 'LATCHKEY_SECRET_FILE';
    try {
      secret = fs.readFileSync(env.LATCHKEY_SECRET_FILE, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(name, `cannot read ${env.LATCHKEY_SECRET_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (secret === undefined || secret === '') {
    if (production) {
      throw new ConfigError(
        'LATCHKEY_SECRET',
        'is required in production: set it to at least 32 random characters (openssl rand -base64 32), or name a file holding it in LATCHKEY_SECRET_FILE',
      );
    }
    return null;
  }
  if (secret.length < MIN_SECRET_LENGTH) throw new ConfigError(name, `must be at least ${MIN_SECRET_LENGTH} characters`);
  return secret;
}

function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(choices as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

function readMetricsSettings(env: Env): MetricsSettings {
  const token = env.METRICS_TOKEN === undefined || env.METRICS_TOKEN === '' ? null : env.METRICS_TOKEN;
  if (token !== null && token.length < 16) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters');
  const port = env.METRICS_PORT === undefined || env.METRICS_PORT === '' ? null : readInteger(env, 'METRICS_PORT', 0, 1, 65535);
  return Object.freeze({ token, port, host: env.METRICS_HOST || '127.0.0.1' });
}

const COLOR = /^#[0-9a-fA-F]{6}$/;

// Logos are shown on every page: https (or a small inline image), never script-capable schemes.
function readImageUrl(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  if (/^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/.test(raw)) {
    if (raw.length > 16_384) throw new ConfigError(name, 'a data: image must be under 16 KiB; host a larger logo on https');
    return raw;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be an https URL or a data:image/… URL');
  }
  if (url.protocol !== 'https:') throw new ConfigError(name, 'must be an https URL or a data:image/… URL');
  return url.href;
}

function readBranding(env: Env): Branding {
  const productName = (env.PRODUCT_NAME ?? '').trim() || 'Latchkey';
  if (productName.length > 60) throw new ConfigError('PRODUCT_NAME', 'must be at most 60 characters');
  const color = (name: string, fallback: string) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!COLOR.test(raw)) throw new ConfigError(name, `must be a colour like #1f5fbf, got ${JSON.stringify(raw)}`);
    return raw;
  };
  const support = env.SUPPORT_URL;
  let supportUrl: string | null = null;
  if (support) {
    try {
      const url = new URL(support);
      if (!['https:', 'http:', 'mailto:'].includes(url.protocol)) throw new Error();
      supportUrl = url.href;
    } catch {
      throw new ConfigError('SUPPORT_URL', 'must be an http(s) or mailto: URL');
    }
  }
  return Object.freeze({
    productName,
    logoUrl: readImageUrl(env, 'BRAND_LOGO_URL'),
    primaryColor: color('BRAND_PRIMARY_COLOR', '#1f5fbf'),
    primaryColorDark: color('BRAND_PRIMARY_COLOR_DARK', '#6ea0ff'),
    supportUrl,
  });
}

const DAY = 24 * 60 * 60;

function readTokenSettings(env: Env): TokenSettings {
  const idle = readInteger(env, 'REFRESH_TOKEN_IDLE_TTL', 14 * DAY, 60, 365 * DAY);
  const absolute = readInteger(env, 'REFRESH_TOKEN_ABSOLUTE_TTL', 90 * DAY, 60, 5 * 365 * DAY);
  if (absolute < idle) {
    throw new ConfigError('REFRESH_TOKEN_ABSOLUTE_TTL', `must be at least REFRESH_TOKEN_IDLE_TTL (${idle})`);
  }
  return Object.freeze({
    accessTokenTtl: readInteger(env, 'ACCESS_TOKEN_TTL', 10 * 60, 30, DAY),
    refreshTokenIdleTtl: idle,
    refreshTokenAbsoluteTtl: absolute,
    refreshTokenReuseGrace: readInteger(env, 'REFRESH_TOKEN_REUSE_GRACE', 5, 0, 60),
    sessionTtl: readInteger(env, 'SESSION_TTL', 14 * DAY, 300, 365 * DAY),
  });
}

/** Reads every setting once; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const port = readInteger(env, 'PORT', 3000, 0, 65535);
  const host = env.HOST === undefined || env.HOST === '' ? '0.0.0.0' : env.HOST;
  // One thread per core for hashing, and one more so that tokens are still signed while every
  // core hashes. Node's own default is four, whatever the cores: too few on more than three.
  const threadPoolSize = readInteger(env, 'UV_THREADPOOL_SIZE', os.availableParallelism() + 1, 1, 1024);
  return Object.freeze({
    production,
    host,
    port,
    issuer: readIssuer(env, port, production),
    databaseUrl: readDatabaseUrl(env),
    argon2: Object.freeze({
      // OWASP's minimum for argon2id: 19 MiB, two passes, one lane.
      memoryKiB: readInteger(env, 'ARGON2_MEMORY_KIB', 19456, 8192, 4194304),
      timeCost: readInteger(env, 'ARGON2_TIME_COST', 2, 1, 100),
      parallelism: readInteger(env, 'ARGON2_PARALLELISM', 1, 1, 64),
      // One per core (more finish no sooner, and each holds its memory while it runs), but
      // never all of libuv's thread pool, which also signs tokens.
      maxConcurrent: readInteger(env, 'ARGON2_MAX_CONCURRENT', Math.max(1, Math.min(os.availableParallelism(), threadPoolSize - 1)), 1, 1024),
    }),
    threadPoolSize,
    trustProxy: readBoolean(env, 'TRUST_PROXY', false),
    tokens: readTokenSettings(env),
    allowPrivateNetworkFetch: readBoolean(env, 'ALLOW_PRIVATE_NETWORK_FETCH', false),
    keyEncryptionSecret: readKeyEncryptionSecret(env, production),
    purgeIntervalSeconds: readInteger(env, 'PURGE_INTERVAL_SECONDS', 600, 10, 86400),
    logLevel: readChoice(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    logBufferBytes: readInteger(env, 'LOG_BUFFER_BYTES', 16 * 1024 * 1024, 4096, 1024 * 1024 * 1024),
    throttling: Object.freeze({
      accountThreshold: readInteger(env, 'THROTTLE_ACCOUNT_THRESHOLD', 5, 1, 1000),
      ipThreshold: readInteger(env, 'THROTTLE_IP_THRESHOLD', 20, 1, 100000),
      baseDelaySeconds: readInteger(env, 'THROTTLE_BASE_DELAY_SECONDS', 30, 1, 3600),
      maxDelaySeconds: readInteger(env, 'THROTTLE_MAX_DELAY_SECONDS', 15 * 60, 1, 86400),
      windowSeconds: readInteger(env, 'THROTTLE_WINDOW_SECONDS', 60 * 60, 60, 7 * 86400),
    }),
    auditRetentionDays: readInteger(env, 'AUDIT_RETENTION_DAYS', 90, 1, 3650),
    metrics: readMetricsSettings(env),
    shutdownTimeoutSeconds: readInteger(env, 'SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    branding: readBranding(env),
    keys: Object.freeze({
      refreshSeconds: readInteger(env, 'KEY_REFRESH_SECONDS', 30, 5, 3600),
      rotationLeadSeconds: readInteger(env, 'KEY_ROTATION_LEAD_SECONDS', 600, 0, 7 * 86400),
      // The longest-lived token a key signs is an API access token (at most 24 hours).
      retireAfterSeconds: readInteger(env, 'KEY_RETIRE_AFTER_SECONDS', 86400 + 300, 3600, 30 * 86400),
    }),
  });
}
