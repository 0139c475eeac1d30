/**
 * Values with units: delays such as `4d` and sizes such as `35M`.
 */
import type { Duration } from './ast.ts';

const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** The longest delay OpenSMTPD 6.8 accepts: its delays are C ints of seconds (about 68 years). */
export const MAX_DELAY_SECONDS = 2 ** 31 - 1;

/** `4d` -> 345600 seconds; a positive number and one of the units s, m, h, d. */
export function parseDuration(text: string): Duration | undefined {
  const m = /^([0-9]+)([smhd])$/.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * SECONDS[m[2]!]!;
  return seconds > 0 && seconds <= MAX_DELAY_SECONDS ? { text, seconds } : undefined;
}

export const DURATION_HINT = 'write a positive number followed by s, m, h or d, as in 4d (at most 24855d)';

const SCALE = 'BKMGTPE';

/**
 * A size in bytes: a plain number, or a number with a unit B, K, M, G, T,
 * P or E (powers of 1024), as in `35M`. A fraction is allowed: `1.5G`.
 */
export function parseSize(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)([bkmgtpeBKMGTPE]?)$/.exec(text);
  if (!m) return undefined;
  const power = m[2] === '' ? 0 : SCALE.indexOf(m[2]!.toUpperCase());
  const bytes = Math.floor(Number(m[1]) * 1024 ** power);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Port names accepted in place of a number. */
export const PORT_NAMES: Readonly<Record<string, number>> = {
  smtp: 25, smtps: 465, submissions: 465, submission: 587, lmtp: 24,
};
