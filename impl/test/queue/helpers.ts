import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { QueueBackend } from '../../src/queue/backend.ts';
import { formatEnvelopeId, formatMessageId } from '../../src/queue/ids.ts';
import type { Envelope } from '../../src/queue/types.ts';

import { template } from './envelope-template.ts';

export { template };

/** A fresh spool directory, removed by the returned function. */
export function tempSpool(): { spool: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'saf-queue-'));
  return { spool: join(dir, 'spool'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A fresh spool for each test that asks, removed after the test: call it
 * in a describe block, then call what it returns in a test.
 */
export function spoolPerTest(): () => string {
  let cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups) cleanup();
    cleanups = [];
  });
  return () => {
    const tmp = tempSpool();
    cleanups.push(tmp.cleanup); // a test may ask for several
    return tmp.spool;
  };
}

/** Reads a whole stream. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** Collects what recover() yields. */
export async function recoverAll(backend: QueueBackend): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const e of backend.recover()) out.push(e);
  return out;
}

/** Creates, writes and commits one message. */
export async function commitMessage(backend: QueueBackend, content: string | Buffer, recipients = ['bob']) {
  const message = await backend.createMessage();
  await message.write(Buffer.from(content));
  return message.commit(recipients.map((r) => template(r)));
}

/** Collects log lines. */
export function logSink(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

/** Where the fs backend keeps an envelope's file: queue/<first two hex digits>/<evpid>. */
export const envelopePath = (spool: string, e: Envelope) =>
  join(spool, 'queue', formatEnvelopeId(e.id).slice(0, 2), formatEnvelopeId(e.id));

/** Where it keeps a committed message's content: queue/<first two hex digits>/<msgid>. */
export const contentPath = (spool: string, e: Envelope) =>
  join(spool, 'queue', formatMessageId(e.messageId).slice(0, 2), formatMessageId(e.messageId));
