/**
 * bcrypt (`$2b$`, and the `$2a$` and `$2y$` spellings), Niels Provos and
 * David Mazières' password hash from OpenBSD, where `smtpctl encrypt`
 * writes it into credentials tables. A hash looks like
 *
 *     $2b$10$<22 characters of salt><31 characters of digest>
 *
 * where 10 is the cost: the key setup runs 2^10 times. The salt is 16
 * bytes and the digest 23, both in bcrypt's base 64 (crypt-base64.ts).
 *
 * The three spellings name the same computation here:
 * - `$2a$` is the original. OpenBSD's first version stored the key length
 *   in a byte, so that passwords of 255 bytes or more wrapped around; and
 *   libxcrypt changes the `$2a$` hash of passwords holding the byte 0xFF,
 *   against an old bug of another implementation. Neither is reproduced:
 *   a UTF-8 password (which never holds 0xFF) shorter than 255 bytes
 *   hashes the same everywhere.
 * - `$2b$` is OpenBSD's since 2014, with that length fixed.
 * - `$2y$` is PHP's and htpasswd's, the same algorithm as `$2b$`.
 * `$2x$`, which asks for the old bug on purpose, is not supported.
 */
import { Blowfish } from './blowfish.ts';
import { decodeBcryptBase64, encodeBcryptBase64 } from './crypt-base64.ts';

const SETTING = /^\$2([aby])\$([0-9]{2})\$([./A-Za-z0-9]{22})/;
const MIN_COST = 4;
const MAX_COST = 31;
/** Only this many bytes of the password (with its terminating NUL) count. */
const MAX_KEY_BYTES = 72;
/** What bcrypt encrypts 64 times with the state the password made. */
const MAGIC = 'OrpheanBeholderScryDoubt';

/** Hashes `password` with the bcrypt `setting` (a whole hash, or its first 29 characters); undefined if it is not one. */
export function bcrypt(password: Uint8Array, setting: string): string | undefined {
  const match = SETTING.exec(setting);
  if (!match) return undefined;
  const [, minor, costText = '', saltText = ''] = match;
  const cost = Number(costText);
  const salt = decodeBcryptBase64(saltText, 16);
  if (cost < MIN_COST || cost > MAX_COST || salt === undefined) return undefined;

  // The key is the password with its C string's terminating NUL, at most 72 bytes.
  const key = new Uint8Array(Math.min(password.length + 1, MAX_KEY_BYTES));
  key.set(password.subarray(0, key.length));
  const state = eksBlowfishSetup(cost, salt, key);

  const text = new Uint32Array(MAGIC.length / 4);
  const magic = new ByteCycle(Buffer.from(MAGIC, 'latin1'));
  for (let i = 0; i < text.length; i++) text[i] = magic.next();
  for (let n = 0; n < 64; n++) {
    for (let block = 0; block < text.length; block += 2) state.encrypt(text, block);
  }
  const digest = Buffer.alloc(text.length * 4);
  text.forEach((word, i) => digest.writeUInt32BE(word, i * 4));
  // The last byte of the 24 is dropped, as every implementation drops it.
  return `$2${minor}$${costText}$${encodeBcryptBase64(salt)}${encodeBcryptBase64(digest.subarray(0, 23))}`;
}

// #region eks-blowfish-setup
/**
 * The expensive key setup ("eksblowfish") that makes bcrypt slow on
 * purpose. Ordinary Blowfish mixes a key into π's digits once; bcrypt
 * mixes in the key and the salt, and then, 2^cost times, the key alone and
 * the salt alone. Each mixing re-encrypts all 521 blocks of the state,
 * and each depends on the one before, so the work cannot be shared or
 * done in parallel. Raising the cost by one doubles the price of every
 * guess; the salt makes each user's state different, so one guess cannot
 * be tried against many hashes at once.
 */
function eksBlowfishSetup(cost: number, salt: Uint8Array, key: Uint8Array): Blowfish {
  const state = new Blowfish();
  expandKey(state, key, salt);
  for (let round = 0; round < 2 ** cost; round++) {
    expandKey(state, key);
    expandKey(state, salt);
  }
  return state;
}
// #endregion eks-blowfish-setup

/**
 * Mixes `key` into the state (Blowfish_expandstate, or Blowfish_expand0state
 * without `salt`): XOR the key, as a repeating string of 32-bit words, into
 * the 18 subkeys; then encrypt a block again and again, replacing the
 * subkeys and then the S-boxes by the results, two words at a time. With
 * a salt, its words are XORed into the block before each encryption.
 * Without one, this is Blowfish's own key schedule.
 */
export function expandKey(state: Blowfish, key: Uint8Array, salt?: Uint8Array): void {
  const keyWords = new ByteCycle(key);
  for (let i = 0; i < state.p.length; i++) state.p[i]! ^= keyWords.next();

  const saltWords = salt && new ByteCycle(salt);
  const block = new Uint32Array(2);
  for (const table of [state.p, state.s]) {
    for (let i = 0; i < table.length; i += 2) {
      if (saltWords) {
        block[0]! ^= saltWords.next();
        block[1]! ^= saltWords.next();
      }
      state.encrypt(block);
      table[i] = block[0]!;
      table[i + 1] = block[1]!;
    }
  }
}

/** Bytes read as big-endian 32-bit words, starting over at the end (stream2word() in OpenBSD's blowfish.c). */
class ByteCycle {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  next(): number {
    let word = 0;
    for (let i = 0; i < 4; i++) {
      word = (word << 8) | this.bytes[this.at]!;
      this.at = (this.at + 1) % this.bytes.length;
    }
    return word >>> 0;
  }
}
