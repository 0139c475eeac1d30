/**
 * SHA-256-crypt (`$5$`) and SHA-512-crypt (`$6$`), as Ulrich Drepper
 * specified them in "Unix crypt using SHA-256 and SHA-512" and as glibc
 * and libxcrypt implement them. `$6$` is what Debian's `smtpctl encrypt`
 * writes into credentials tables.
 *
 * A hash looks like
 *
 *     $6$rounds=10000$saltstring$<86 characters of digest>
 *
 * `rounds=N$` is optional (5000 when absent); the salt is at most 16
 * characters and ends at the next `$`. The step numbers in the comments
 * below are the specification's.
 */
import { createHash, type Hash } from 'node:crypto';
import { encodeCryptBase64 } from './crypt-base64.ts';

interface ShaCryptVariant {
  id: '5' | '6';
  algorithm: 'sha256' | 'sha512';
  /** The order in which the digest's bytes are encoded (step 22 of the specification). */
  order: readonly number[];
}

const SHA256_CRYPT: ShaCryptVariant = {
  id: '5',
  algorithm: 'sha256',
  order: [
    0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15, 25, 5, 6, 16, 26, 27, 7, 17, 18, 28, 8, 9, 19, 29,
    31, 30,
  ],
};

const SHA512_CRYPT: ShaCryptVariant = {
  id: '6',
  algorithm: 'sha512',
  order: [
    0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51,
    31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60,
    40, 61, 19, 62, 20, 41, 63,
  ],
};

export const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
const MAX_SALT = 16;

/** `$5$` or `$6$`, an optional `rounds=N$`, then the salt up to the next `$` (or the end). */
const SETTING = /^\$([56])\$(?:rounds=([0-9]+)\$)?([^$]*)/;

/**
 * Hashes `key` with the SHA-crypt `setting` (a whole hash, or its prefix
 * up to the salt) and returns the complete hash, or undefined if the
 * setting is not SHA-crypt.
 */
export function shaCrypt(key: Uint8Array, setting: string): string | undefined {
  const match = SETTING.exec(setting);
  if (!match) return undefined;
  const [, id, roundsText, saltText = ''] = match;
  // `rounds=` that is not digits then `$` is not a setting we understand.
  if (roundsText === undefined && saltText.startsWith('rounds=')) return undefined;
  const variant = id === '5' ? SHA256_CRYPT : SHA512_CRYPT;
  // Too few or too many rounds are brought into range, as the specification
  // and glibc do (libxcrypt refuses such a hash instead).
  const rounds =
    roundsText === undefined ? DEFAULT_ROUNDS : Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, Number(roundsText)));
  const salt = saltText.slice(0, MAX_SALT);

  const digest = shaCryptDigest(variant, key, Buffer.from(salt, 'utf8'), rounds);
  const roundsPart = roundsText === undefined ? '' : `rounds=${rounds}$`;
  return `$${variant.id}$${roundsPart}${salt}$${encodeCryptBase64(digest, variant.order)}`;
}

/** `count` bytes of `source` repeated: whole copies, then the first bytes of one more. */
function repeatTo(source: Uint8Array, count: number): Buffer {
  const out = Buffer.alloc(count);
  for (let at = 0; at < count; at += source.length) out.set(source.subarray(0, count - at), at);
  return out;
}

function shaCryptDigest(variant: ShaCryptVariant, key: Uint8Array, salt: Uint8Array, rounds: number): Buffer {
  const hash = (): Hash => createHash(variant.algorithm);

  // Steps 4-8: digest B is key, salt, key.
  const b = hash().update(key).update(salt).update(key).digest();

  // Steps 1-3, 9-12: digest A is key and salt, then as many bytes of B as
  // the key is long, then B or the key for each bit of the key's length,
  // from the lowest bit up (B for a 1, the key for a 0).
  const a = hash().update(key).update(salt).update(repeatTo(b, key.length));
  for (let length = key.length; length > 0; length >>= 1) a.update(length & 1 ? b : key);
  let c = a.digest();

  // Steps 13-16: P is as long as the key, cut from a digest of the key
  // repeated once per byte of the key.
  const dp = hash();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = repeatTo(dp.digest(), key.length);

  // Steps 17-20: S is as long as the salt, cut from a digest of the salt
  // repeated 16 + A[0] times.
  const ds = hash();
  for (let i = 0; i < 16 + c[0]!; i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);

  // #region sha-crypt-rounds
  // Step 21: the rounds. Each digests the previous one with P and S, in
  // an arrangement that changes with the round number, so that no round
  // can reuse the work of another: an attacker pays for every round of
  // every guess, as we pay once per login.
  for (let round = 0; round < rounds; round++) {
    const h = hash();
    h.update(round % 2 === 1 ? p : c);
    if (round % 3 !== 0) h.update(s);
    if (round % 7 !== 0) h.update(p);
    h.update(round % 2 === 1 ? c : p);
    c = h.digest();
  }
  // #endregion sha-crypt-rounds
  return c;
}
