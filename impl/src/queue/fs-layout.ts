/**
 * Where the fs backend keeps things under the spool directory, and how the
 * spool is made ready at start-up.
 */
import { mkdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { formatEnvelopeId, formatMessageId, messageIdOf, parseEnvelopeId, parseMessageId } from './ids.ts';
import type { DirectoryHandles } from './spool-io.ts';
import type { EnvelopeId, MessageId } from './types.ts';

// #region spool-layout
/**
 * The spool holds files only, in four directories:
 *
 *   incoming/<msgid>         content of a message being received
 *   queue/<xx>/<msgid>       content of a committed message
 *   queue/<xx>/<evpid>       one envelope (one recipient) per file
 *   temporary/<evpid>.<n>    an envelope update being written
 *   corrupt/                 files that failed validation, kept for a human
 *
 * The content's name in queue/ is the commit record: a message is
 * committed exactly when queue/<xx>/<msgid> exists. Its envelope files
 * are written into queue/ first, where they mean nothing until that name
 * appears; one rename then commits content and envelopes together. So
 * start-up deletes incoming/ and temporary/, and any envelope in queue/
 * whose content is not there: none of it was ever committed, so no client
 * was told 250 for it.
 *
 * queue/ is split into 256 buckets, `xx` being the first two hex digits of
 * the message id, as in OpenSMTPD, so that no directory grows huge when
 * mail piles up. An envelope id begins with its message id, so a message
 * and its envelopes share a bucket: `ls queue/1a/` shows `1a2b3c4d` and
 * `1a2b3c4d00c0ffee`. OpenSMTPD gives each message a directory; here a
 * message is files and no directory: a directory per message costs an
 * extra mkdir, rename and directory fsync for every message, and in
 * measurements on this project's machine (ext4) it took 10-70% more CPU
 * per commit at 20 sessions, for no gain in safety.
 */
export class SpoolLayout {
  readonly incoming: string;
  readonly queue: string;
  readonly temporary: string;
  readonly corrupt: string;

  constructor(readonly root: string) {
    this.incoming = join(root, 'incoming');
    this.queue = join(root, 'queue');
    this.temporary = join(root, 'temporary');
    this.corrupt = join(root, 'corrupt');
  }

  incomingFile(msgid: MessageId): string {
    return join(this.incoming, formatMessageId(msgid));
  }

  bucketDir(msgid: MessageId): string {
    return join(this.queue, bucketName(msgid >>> 24));
  }

  messageFile(msgid: MessageId): string {
    return join(this.bucketDir(msgid), formatMessageId(msgid));
  }

  envelopeFile(id: EnvelopeId): string {
    return join(this.bucketDir(messageIdOf(id)), formatEnvelopeId(id));
  }
}
// #endregion spool-layout

/** A bucket's name: its number as two hex digits. */
export function bucketName(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** What a bucket holds, sorted by kind. */
export interface BucketListing {
  messages: Set<MessageId>;
  envelopes: EnvelopeId[];
  /** Names that are neither, or that belong in another bucket. */
  bogus: string[];
}

export async function listBucket(layout: SpoolLayout, n: number): Promise<BucketListing> {
  const listing: BucketListing = { messages: new Set(), envelopes: [], bogus: [] };
  for (const name of await readdir(join(layout.queue, bucketName(n)))) {
    const msgid = parseMessageId(name);
    const evpid = msgid === undefined ? parseEnvelopeId(name) : undefined;
    const owner = msgid ?? (evpid === undefined ? undefined : messageIdOf(evpid));
    if (owner === undefined || owner >>> 24 !== n) listing.bogus.push(name);
    else if (msgid !== undefined) listing.messages.add(msgid);
    else if (evpid !== undefined) listing.envelopes.push(evpid);
  }
  return listing;
}

/**
 * Makes the spool ready, and returns its committed messages with their
 * number of envelopes. Run once, at start-up, before anything else
 * touches the spool.
 *
 * Everything not covered by a commit record goes: incoming/, temporary/,
 * and envelope files whose content is not in queue/ (a commit cut short).
 * Content left without any envelope (a delete cut short) goes too.
 * Directories are created if missing, then queue/ and the spool itself are
 * fsync'd: a bucket made now must not vanish in a power cut after a
 * message was committed into it.
 */
export async function initSpool(
  layout: SpoolLayout,
  dirs: DirectoryHandles,
  log: (line: string) => void,
): Promise<Map<MessageId, number>> {
  await rm(layout.incoming, { recursive: true, force: true });
  await rm(layout.temporary, { recursive: true, force: true });
  // Blocking mkdir, as the queue's other quick calls (spool-io.ts): Node 20's asynchronous
  // recursive mkdir reports a full disk (ENOSPC) as ENOENT, and a start that fails must say why.
  for (const dir of [layout.root, layout.incoming, layout.queue, layout.temporary, layout.corrupt]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const committed = new Map<MessageId, number>();
  let orphans = 0;
  for (let n = 0; n < 256; n++) {
    mkdirSync(join(layout.queue, bucketName(n)), { recursive: true, mode: 0o700 });
    const { messages, envelopes, bogus } = await listBucket(layout, n);
    for (const name of bogus) log(`warn: queue: bogus file queue/${bucketName(n)}/${name}, ignored`);
    for (const evpid of envelopes) {
      const msgid = messageIdOf(evpid);
      if (messages.has(msgid)) {
        committed.set(msgid, (committed.get(msgid) ?? 0) + 1);
      } else {
        await rm(layout.envelopeFile(evpid), { force: true });
        orphans += 1;
      }
    }
    for (const msgid of messages) {
      if (!committed.has(msgid)) {
        await rm(layout.messageFile(msgid), { force: true });
        orphans += 1;
      }
    }
  }
  if (orphans > 0) log(`info: queue: removed ${orphans} file${orphans === 1 ? '' : 's'} of messages never committed or half deleted`);
  await dirs.sync(layout.queue);
  await dirs.sync(layout.root);
  return committed;
}
