/**
 * The two base-64 encodings of crypt(3) hashes. Both write 6 bits per
 * character and neither pads, but they differ in alphabet and in bit order:
 *
 * - The traditional crypt alphabet `./0-9A-Za-z`, used for salts and for
 *   SHA-crypt digests. SHA-crypt takes the digest's bytes three at a time,
 *   in a shuffled order, and writes each 24-bit group low 6 bits first.
 * - bcrypt's alphabet `./A-Za-z0-9`, with the bytes in order and the high
 *   bits first: standard base 64 (RFC 4648) with another alphabet.
 */

/** The crypt alphabet: character i stands for the value i. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Encodes `bytes` in the order `order` lists their indexes, as SHA-crypt
 * does. Each group of three indexes (b2, b1, b0) is the 24-bit number
 * b2·2¹⁶ + b1·2⁸ + b0, written as four characters, lowest 6 bits first.
 * A last group of one or two indexes is a smaller number (the missing
 * high bytes are zero) and gives two or three characters.
 */
export function encodeCryptBase64(bytes: Uint8Array, order: readonly number[]): string {
  let out = '';
  for (let i = 0; i < order.length; i += 3) {
    const group = order.slice(i, i + 3);
    let value = 0;
    for (const index of group) value = (value << 8) | bytes[index]!;
    const chars = group.length === 3 ? 4 : group.length + 1;
    for (let c = 0; c < chars; c++, value >>>= 6) out += CRYPT_ALPHABET[value & 0x3f];
  }
  return out;
}

const STANDARD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function translate(text: string, from: string, to: string): string {
  let out = '';
  for (const ch of text) out += to[from.indexOf(ch)];
  return out;
}

/** bcrypt's encoding of `bytes`: ceil(8n/6) characters, no padding. */
export function encodeBcryptBase64(bytes: Uint8Array): string {
  const standard = Buffer.from(bytes).toString('base64').replace(/=+$/, '');
  return translate(standard, STANDARD_ALPHABET, BCRYPT_ALPHABET);
}

/**
 * Decodes `length` bytes from bcrypt base 64; undefined if `text` holds
 * another character or too few of them. Bits beyond `length` bytes (the
 * low 4 bits of a 22-character salt's last character) are ignored.
 */
export function decodeBcryptBase64(text: string, length: number): Uint8Array | undefined {
  if (!/^[./A-Za-z0-9]*$/.test(text) || text.length < Math.ceil((length * 8) / 6)) return undefined;
  const bytes = Buffer.from(translate(text, BCRYPT_ALPHABET, STANDARD_ALPHABET), 'base64');
  return bytes.length < length ? undefined : new Uint8Array(bytes.subarray(0, length));
}
