/**
 * Reading the spool back: one envelope file (validated), every committed
 * envelope after a restart, and what happens to files that fail
 * validation.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { readdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MAX_ENVELOPE_BYTES, parseEnvelope, type ParsedEnvelope, type ValidateOptions } from './envelope-format.ts';
import { listBucket, type SpoolLayout } from './fs-layout.ts';
import { formatEnvelopeId, formatMessageId, messageIdOf } from './ids.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

/** A log line: `warn: ...` or `info: ...`, as OpenSMTPD writes them. */
export type QueueLog = (line: string) => void;

/** What recovering needs from the backend. */
export interface RecoverContext {
  readonly layout: SpoolLayout;
  readonly validate: ValidateOptions;
  readonly log: QueueLog;
  /** Committed, and not since start-up (the scheduler heard of those at commit, and must not see them twice). */
  isRecoverable(msgid: MessageId): boolean;
  /** An envelope was moved to corrupt/: the backend stops counting it. */
  dropEnvelope(id: EnvelopeId): Promise<void>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads and validates an envelope file; undefined if there is no such file. */
export async function readEnvelopeFile(
  path: string,
  expected: EnvelopeId,
  validate: ValidateOptions,
): Promise<ParsedEnvelope | undefined> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path); // blocking: a few KiB, and the pool costs more than the read (see spool-io.ts)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  if (bytes.length > MAX_ENVELOPE_BYTES) return { error: 'too large' };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { error: 'not UTF-8' };
  }
  const parsed = parseEnvelope(text, validate);
  if ('envelope' in parsed && parsed.envelope.id !== expected) return { error: 'id does not match file name' };
  return parsed;
}

// #region recover
/**
 * Every committed envelope, for the scheduler after a restart. Start-up
 * (initSpool) already removed what was never committed, so each envelope
 * file here was written whole and fsync'd once; what it may be now is
 * damaged, by a disk, an admin or a bug. The rule is OpenSMTPD's: nothing
 * read back is trusted. An envelope that fails validation is moved to
 * corrupt/ with a log line saying why: never delivered, never silently
 * deleted, kept for a human to look at. A message whose envelopes all
 * went there follows them, so that queue/ holds no content nobody will
 * deliver.
 */
export async function* recoverSpool(ctx: RecoverContext): AsyncGenerator<Envelope> {
  for (let n = 0; n < 256; n++) {
    const { envelopes } = await listBucket(ctx.layout, n);
    for (const id of envelopes) {
      if (!ctx.isRecoverable(messageIdOf(id))) continue;
      const parsed = await readEnvelopeFile(ctx.layout.envelopeFile(id), id, ctx.validate);
      if (parsed === undefined) continue; // deleted while we walked
      if ('envelope' in parsed) {
        yield parsed.envelope;
      } else {
        await quarantine(ctx.layout, ctx.log, id, parsed.error);
        await ctx.dropEnvelope(id);
      }
    }
  }
}
// #endregion recover

/**
 * Moves an envelope file (given its id) or a message's content (given its
 * message id) from queue/ to corrupt/, with a log line saying why. If the
 * move fails, the file stays and the failure is logged: it is still never
 * trusted, since every read validates.
 */
export async function quarantine(
  layout: SpoolLayout,
  log: QueueLog,
  id: EnvelopeId | MessageId,
  reason: string,
): Promise<void> {
  const [what, path] = typeof id === 'bigint'
    ? [`envelope ${formatEnvelopeId(id)}`, layout.envelopeFile(id)]
    : [`message ${formatMessageId(id)}`, layout.messageFile(id)];
  try {
    mkdirSync(layout.corrupt, { recursive: true, mode: 0o700 }); // blocking: see initSpool on ENOSPC
    await rename(path, await freeName(layout.corrupt, basename(path)));
    log(`warn: queue: ${what}: ${reason}; moved to corrupt/`);
  } catch (err) {
    log(`warn: queue: ${what}: ${reason}; cannot move it to corrupt/: ${String(err)}`);
  }
}

/** `name` in `dir`, or `name.1`, `name.2`... if taken: corrupt/ never overwrites evidence. */
async function freeName(dir: string, name: string): Promise<string> {
  const taken = new Set(await readdir(dir));
  let candidate = name;
  for (let i = 1; taken.has(candidate); i++) candidate = `${name}.${i}`;
  return join(dir, candidate);
}

export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
