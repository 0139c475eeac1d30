/**
 * What the fuzzers share: a seeded generator, so that a failure found in
 * a run can be replayed from its seed and case number alone, and the
 * mutations that turn a valid input into a slightly broken one.
 */

/** sfc32: small, fast, and the same sequence on every machine for a seed. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** Case `n` of a run seeded `seed` has its own generator: a case can be replayed without the ones before it. */
export function caseRandom(seed: number, n: number): Random {
  return new Random((Math.imul(seed, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35)) >>> 0);
}

/** Bytes that tend to matter to parsers of text. */
const INTERESTING = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x23, 0x24, 0x27, 0x2c, 0x2e, 0x3a, 0x3c, 0x3e, 0x3d, 0x40, 0x5c, 0x7b, 0x7d, 0x7f, 0x80, 0xc3, 0xff];

/** A few random edits of `input`: bytes inserted, deleted, replaced; ranges duplicated, cut, moved. */
export function mutateBytes(r: Random, input: Buffer, edits = r.range(1, 4)): Buffer {
  let b = Buffer.from(input);
  for (let k = 0; k < edits; k++) {
    const at = r.int(b.length + 1);
    switch (r.int(8)) {
      case 0: b = Buffer.concat([b.subarray(0, at), Buffer.from([r.pick(INTERESTING)]), b.subarray(at)]); break;
      case 1: b = Buffer.concat([b.subarray(0, at), b.subarray(at + r.range(1, 8))]); break;
      case 2: if (at < b.length) b[at] = r.chance(0.5) ? r.pick(INTERESTING) : r.int(256); break;
      case 3: { // duplicate a range
        const len = r.range(1, 64);
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 4: { // move a range elsewhere
        const len = r.range(1, 32);
        const piece = b.subarray(at, at + len);
        const rest = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        const to = r.int(rest.length + 1);
        b = Buffer.concat([rest.subarray(0, to), piece, rest.subarray(to)]);
        break;
      }
      case 5: b = b.subarray(0, at); break;
      case 6: { // a long run of one byte
        const len = r.pick([64, 255, 256, 1000, 4096, 13000]);
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(len, r.pick([0x41, 0x20, 0x2e, 0x22, 0x5c, 0x7b])), b.subarray(at)]);
        break;
      }
      default: { // flip the case of a letter
        if (at < b.length && /[a-zA-Z]/.test(String.fromCharCode(b[at]!))) b[at] = b[at]! ^ 0x20;
      }
    }
  }
  return b;
}

/** Where to cut `length` bytes into chunks: sorted offsets strictly inside. */
export function splitPoints(r: Random, length: number): number[] {
  if (length < 2) return [];
  const n = r.chance(0.3) ? Math.min(length - 1, r.range(1, 40)) : r.range(0, 3);
  const points = new Set<number>();
  for (let i = 0; i < n; i++) points.add(r.range(1, length - 1));
  return [...points].sort((a, b) => a - b);
}
