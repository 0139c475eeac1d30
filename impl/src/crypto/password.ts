/**
 * Password hashes as crypt(3) reads and writes them: the values of a
 * listener's credentials table (`auth <table>`), which `smtpctl encrypt`
 * makes.
 *
 * A crypt hash carries its own method and parameters: the text before
 * the digest (`$6$salt$`, `$2b$10$salt`) is the *setting* that produced
 * it. To check a password, hash it again with the stored hash as the
 * setting and compare: the same password gives the same string.
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import { bcrypt } from './bcrypt.ts';
import { CRYPT_ALPHABET } from './crypt-base64.ts';
import { shaCrypt } from './sha-crypt.ts';

/** The methods we can verify, by their crypt prefix. */
export type HashMethod = 'sha512-crypt' | 'sha256-crypt' | 'bcrypt';

const METHODS: readonly { prefix: RegExp; method: HashMethod }[] = [
  { prefix: /^\$6\$/, method: 'sha512-crypt' },
  { prefix: /^\$5\$/, method: 'sha256-crypt' },
  { prefix: /^\$2[aby]\$/, method: 'bcrypt' },
];

/** The method of a stored hash, or undefined for one we cannot verify (`$1$`, DES, `$y$`...). */
export function hashMethod(hash: string): HashMethod | undefined {
  return METHODS.find(({ prefix }) => prefix.test(hash))?.method;
}

/**
 * crypt(3): hashes `password` with `setting` (a stored hash, or the part of
 * one up to its salt). Undefined if the setting names no method we have,
 * or is malformed.
 */
export function crypt(password: string | Uint8Array, setting: string): string | undefined {
  const key = passwordBytes(password);
  switch (hashMethod(setting)) {
    case 'sha512-crypt':
    case 'sha256-crypt':
      return shaCrypt(key, setting);
    case 'bcrypt':
      return bcrypt(key, setting);
    case undefined:
      return undefined;
  }
}

/**
 * The bytes crypt(3) sees: UTF-8 for a string, and in any case only what
 * comes before the first NUL, where a C string ends.
 */
function passwordBytes(password: string | Uint8Array): Uint8Array {
  const bytes = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
}

// #region verify-password
/**
 * Does `password` match the stored `hash`?
 *
 * The two strings are compared in constant time. An ordinary comparison
 * stops at the first difference, and how long it took says how many
 * leading characters of the attacker's hash were right; with enough
 * measurements that leaks the stored hash, which can then be cracked
 * offline. The lengths may differ only if the stored hash is not one crypt
 * could have written, and a length is no secret.
 *
 * An empty stored hash matches nothing. (OpenBSD's crypt_checkpass() lets
 * an empty password match it, which would make a forgotten entry an open
 * account.)
 */
export function verifyPassword(password: string | Uint8Array, hash: string): boolean {
  const computed = crypt(password, hash);
  if (computed === undefined) return false;
  const a = Buffer.from(computed, 'utf8');
  const b = Buffer.from(hash, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
// #endregion verify-password

export interface HashOptions {
  /** SHA-512-crypt rounds; absent means the default 5000, and no `rounds=` in the hash. */
  rounds?: number;
  /** A salt of crypt alphabet characters; absent means 16 random ones. */
  salt?: string;
}

/**
 * A new hash of `password`, as Debian's `smtpctl encrypt` makes it:
 * SHA-512-crypt, default rounds, 16 random salt characters. (Portable
 * OpenSMTPD tries several crypt methods with one 16-character salt and
 * keeps the first the C library accepts, which on Debian is `$6$`; on
 * OpenBSD, `smtpctl encrypt` writes bcrypt.)
 */
export function hashPassword(password: string | Uint8Array, options: HashOptions = {}): string {
  const salt = options.salt ?? randomSalt(16);
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error('a salt is 1 to 16 characters of [./0-9A-Za-z]');
  const rounds = options.rounds === undefined ? '' : `rounds=${options.rounds}$`;
  const hash = crypt(password, `$6$${rounds}${salt}$`);
  if (hash === undefined) throw new Error(`invalid rounds: ${options.rounds}`);
  return hash;
}

/** `length` characters drawn uniformly from the crypt alphabet. */
export function randomSalt(length: number): string {
  let salt = '';
  for (let i = 0; i < length; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)];
  return salt;
}
