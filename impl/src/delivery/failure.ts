/**
 * Turning a system error into a DeliveryOutcome. Almost every file
 * system error is temporary from the queue's point of view: a full disk,
 * a quota, a permission the administrator will fix. OpenSMTPD's helpers
 * (mail.maildir.c, mail.mboxfile.c) exit EX_TEMPFAIL for all of them but
 * a path that can never work, which is what ENAMETOOLONG says.
 */
import type { DeliveryOutcome } from './types.ts';

const PERMANENT = new Set(['ENAMETOOLONG']);

/** `what: message`, on one line. */
export function fsFailure(what: string, error: unknown): DeliveryOutcome {
  const code = (error as NodeJS.ErrnoException)?.code;
  return {
    result: code && PERMANENT.has(code) ? 'permfail' : 'tempfail',
    reason: `${what}: ${oneLine(error instanceof Error ? error.message : String(error))}`,
  };
}

/**
 * A reason must fit on one log line and in one bounce line, and go into
 * the envelope, which holds no control characters: a peer's reply (an
 * LMTP server's) may carry any, and each becomes `?`.
 */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '?').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** `300 ms`, `5 s`, `9 minutes`: a time limit as a reason names it. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  return s < 120 || s % 60 !== 0 ? `${s} s` : `${s / 60} minutes`;
}
