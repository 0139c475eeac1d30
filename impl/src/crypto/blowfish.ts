/**
 * The Blowfish block cipher (Bruce Schneier, 1993): the part bcrypt builds
 * on. Only encryption is here, as bcrypt never decrypts.
 *
 * The cipher's state is 18 subkeys (the P-array) and four S-boxes of 256
 * 32-bit words each. Encrypting a 64-bit block runs 16 rounds of a Feistel
 * network over its two 32-bit halves; a key is set by mixing it into the
 * state and then encrypting over the state itself. bcrypt does the mixing
 * its own way (bcrypt.ts), so this class exposes the state.
 */

const SUBKEYS = 18;
const SBOX_WORDS = 4 * 256;

/**
 * Blowfish's initial state is the fractional part of π in hexadecimal:
 * P[0] = 0x243F6A88, P[1] = 0x85A308D3, and so on through the last word of
 * the fourth S-box, 4,168 words later. Nobody chose those digits, so
 * nobody could have hidden a weakness in them.
 *
 * Rather than paste 33,344 hex digits, we compute them, once, the first
 * time bcrypt needs them (about 40 ms). Machin's formula
 * π = 16·arctan(1/5) − 4·arctan(1/239), with arctan(1/x) = 1/x − 1/3x³ +
 * 1/5x⁵ − ..., is evaluated in fixed point: integers scaled by 2^bits,
 * with 64 bits more than we keep, which absorb the rounding of the
 * tens of thousands of divisions.
 */
function piFractionWords(count: number): Uint32Array {
  const guard = 64n;
  const bits = BigInt(count * 32) + guard;
  const one = 1n << bits;
  const arctanInverse = (x: bigint): bigint => {
    let power = one / x; // 1/x^(2k+1), scaled
    let sum = power;
    for (let k = 1n; power !== 0n; k++) {
      power /= x * x;
      sum += (k % 2n === 0n ? 1n : -1n) * (power / (2n * k + 1n));
    }
    return sum;
  };
  const pi = 16n * arctanInverse(5n) - 4n * arctanInverse(239n);
  const fraction = (pi - (3n << bits)) >> guard;
  const hex = fraction.toString(16).padStart(count * 8, '0');
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) words[i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  return words;
}

let initialState: Uint32Array | undefined;

/** The 4,168 words of π that every Blowfish state starts from. */
export function blowfishInitialState(): Uint32Array {
  initialState ??= piFractionWords(SUBKEYS + SBOX_WORDS);
  return initialState;
}

export class Blowfish {
  /** The 18 subkeys. */
  readonly p = new Uint32Array(SUBKEYS);
  /** The four S-boxes, one after the other: S0 is s[0..255], S1 is s[256..511], ... */
  readonly s = new Uint32Array(SBOX_WORDS);

  /** A state before any key: the digits of π. */
  constructor() {
    const initial = blowfishInitialState();
    this.p.set(initial.subarray(0, SUBKEYS));
    this.s.set(initial.subarray(SUBKEYS));
  }

  /** The round function: the four bytes of x choose one word of each S-box. */
  private f(x: number): number {
    const s = this.s;
    const a = s[x >>> 24]!;
    const b = s[256 + ((x >>> 16) & 0xff)]!;
    const c = s[512 + ((x >>> 8) & 0xff)]!;
    const d = s[768 + (x & 0xff)]!;
    return (((a + b) ^ c) + d) | 0;
  }

  /** Encrypts the 64-bit block block[at], block[at + 1] (left and right halves) in place. */
  encrypt(block: Uint32Array, at = 0): void {
    const p = this.p;
    let left = block[at]! ^ p[0]!;
    let right = block[at + 1]!;
    // Sixteen rounds, two per turn: each half in turn is changed by a
    // function of the other and the next subkey.
    for (let i = 1; i <= 16; i += 2) {
      right ^= this.f(left) ^ p[i]!;
      left ^= this.f(right) ^ p[i + 1]!;
    }
    block[at] = right ^ p[17]!;
    block[at + 1] = left;
  }
}
