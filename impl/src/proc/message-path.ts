/**
 * The queue's end of the message path: the requests and content chunks
 * that smtp sends over its socket, applied to the real backend.
 */
import type { Logger } from '../log/index.ts';
import type { IncomingMessage, QueueBackend } from '../queue/backend.ts';
import type { Envelope, MessageId } from '../queue/types.ts';
import { queueChannel, toWire } from './channels/queue.ts';
import { Peer } from './peer.ts';
import type { StorageTrouble } from './storage-trouble.ts';
import type { Transport } from './transport.ts';

/** Stop reading the socket when this much content waits for the disk; read again below half of it. */
const HIGH_WATER = 4 * 1024 * 1024;

interface Receiving {
  message: IncomingMessage;
  /** The writes so far, in order: each chunk is written after the one before it. */
  written: Promise<void>;
  failed?: Error;
}

export interface MessagePathOptions {
  transport: Transport;
  backend: QueueBackend;
  log: Logger;
  /** Called with the envelopes of each committed message (for the scheduler). */
  committed?: (envelopes: Envelope[]) => void;
  /** Told of every message that could not be created or committed, to explain a full disk and the like. */
  trouble?: StorageTrouble;
}

/**
 * Each message smtp creates is remembered with the chain of its writes.
 * A chunk is appended to the chain; a commit waits for the chain, then
 * commits, so content and commit reach the disk in the order smtp sent
 * them although the writes are asynchronous. When more than HIGH_WATER
 * bytes wait for the disk, the socket is paused: the kernel's buffer
 * fills, smtp's write() waits for 'drain', and the client's DATA slows
 * down. A chunk for a message smtp did not create on this socket is
 * refused. If smtp goes away, its unfinished messages are aborted.
 */
export function serveMessagePath(options: MessagePathOptions): Peer<typeof queueChannel['calls']> {
  const { transport, backend, log } = options;
  const receiving = new Map<number, Receiving>();
  let waiting = 0;

  const find = (msgid: number): Receiving => {
    const entry = receiving.get(msgid);
    if (!entry) throw new Error(`queue: no message ${hex(msgid)} being received`);
    return entry;
  };

  const onChunk = (ref: number, bytes: Buffer) => {
    const entry = receiving.get(ref);
    if (!entry) {
      log.warn(`warn: queue: content for unknown message ${hex(ref)} refused`);
      return;
    }
    waiting += bytes.length;
    if (waiting > HIGH_WATER) transport.pause();
    entry.written = entry.written.then(async () => {
      try {
        if (!entry.failed) await entry.message.write(bytes);
      } catch (err) {
        entry.failed = err as Error;
      } finally {
        waiting -= bytes.length;
        if (waiting < HIGH_WATER / 2) transport.resume();
      }
    });
  };

  /** A new message for smtp to fill, remembered with an empty chain of writes. */
  const create = async (): Promise<number> => {
    const message = await backend.createMessage();
    receiving.set(message.id, { message, written: Promise.resolve() });
    log.trace('queue', `queue: message ${hex(message.id)} created`);
    return message.id;
  };

  const abort = async (msgid: number): Promise<void> => {
    const entry = find(msgid);
    receiving.delete(msgid);
    await entry.written;
    await entry.message.abort();
  };

  return new Peer({
    self: 'queue',
    peer: 'smtp',
    transport,
    log,
    onChunk,
    onClose: () => {
      for (const [msgid, entry] of receiving) {
        receiving.delete(msgid);
        void entry.written.then(() => entry.message.abort()).catch(() => {});
      }
    },
    serves: {
      channel: queueChannel,
      handlers: {
        'queue.message.create': async () => {
          try {
            return { msgid: await create() };
          } catch (err) {
            options.trouble?.report(err);
            throw err;
          }
        },
        'queue.message.commit': async ({ msgid, envelopes, spare }) => {
          const entry = find(msgid);
          // The spare is created while the commit waits for the disk.
          const next = spare ? create() : undefined;
          next?.catch(() => {});
          try {
            await entry.written;
            receiving.delete(msgid);
            if (entry.failed) {
              await entry.message.abort().catch(() => {});
              throw entry.failed;
            }
            // A commit that fails (an envelope the backend refuses, a disk error) leaves the message to us:
            // smtp can no longer abort it, since it is no longer being received.
            const committed = await entry.message.commit(envelopes).catch(async (err: unknown) => {
              await entry.message.abort().catch(() => {});
              throw err;
            });
            log.trace('queue', `queue: message ${hex(msgid)} committed with ${committed.length} envelope(s)`);
            options.committed?.(committed);
            return { envelopes: committed.map(toWire), ...(next && { spare: await next.catch(() => undefined) }) };
          } catch (err) {
            // The commit failed: smtp will not learn of the spare, so it goes.
            void next?.then((id) => abort(id), () => {});
            options.trouble?.report(err);
            throw err;
          }
        },
        'queue.message.abort': async ({ msgid }) => {
          await abort(msgid);
          return {};
        },
      },
    },
  });
}

function hex(msgid: number | MessageId): string {
  return msgid.toString(16).padStart(8, '0');
}
