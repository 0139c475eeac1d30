/**
 * How frames move between two processes. Two carriers, one interface:
 *
 * - Node's IPC channel, which fork() sets up between the parent and each
 *   child. It carries JSON values and, alongside a value, a handle: a
 *   listening net.Server or a connected net.Socket (the file descriptor
 *   travels as SCM_RIGHTS ancillary data); a dgram socket can go too.
 *   Sockets are the only descriptors Node can pass; there is no API to
 *   send an open file, a pipe or a TLS key handle, which OpenSMTPD's imsg
 *   can.
 *
 * - A Unix-domain stream socket between two children (see links.ts), with
 *   frames of our own: a 4-byte length, a 1-byte kind, the payload. Kind 0
 *   is a JSON frame like those of the IPC channel; kind 1 is a chunk of
 *   message content, sent as raw bytes behind a 4-byte message reference,
 *   so that a megabyte of mail costs one copy into the socket, not a
 *   JSON-encoded array of numbers.
 */
import type { ChildProcess } from 'node:child_process';
import type { Server, Socket } from 'node:net';

/**
 * The error a socket is destroyed with when this side drops the channel
 * because of what came on it (see socketTransport's close), as opposed
 * to an error of the socket itself (EPIPE, ECONNRESET: the peer is gone).
 */
export class ChannelRefused extends Error {
  override readonly name = 'ChannelRefused';
}

/** What a transport delivers to the Peer above it. */
export interface TransportSink {
  frame(frame: unknown, handle: unknown): void;
  chunk(ref: number, bytes: Buffer): void;
  /** The sender of `ref`'s content stopped before its end: it will send no more of it. */
  abandoned?(ref: number): void;
  /** The other side went away (exited, closed the socket) or broke the framing. */
  closed(reason: string): void;
}

export interface Transport {
  /** Which kind of carrier, for traces: `ipc` or `socket`. */
  readonly kind: 'ipc' | 'socket';
  attach(sink: TransportSink): void;
  send(frame: object, handle?: Server | Socket): void;
  /**
   * Sends content bytes for message `ref`. Returns false when the socket's
   * buffer is over its mark: the caller should wait for `drained()`.
   * The IPC channel has no chunks: it throws.
   */
  sendChunk(ref: number, bytes: Uint8Array): boolean;
  drained(): Promise<void>;
  /**
   * Content flow control (content-stream.ts). The receiver of content
   * tells the sender how many more bytes of `ref` it has read; the sender
   * watches that count for a message it sends, and waits on it.
   */
  sendCredit(ref: number, bytes: number): void;
  watchCredits(ref: number): CreditWatch;
  /** Tells the receiver that the rest of `ref`'s content will not come. */
  sendAbandon(ref: number): void;
  /** Stops reading (the receiver is behind), and starts again. */
  pause(): void;
  resume(): void;
  close(): void;
}

/** What the receiver has said it read of one message's content, as its sender sees it. */
export interface CreditWatch {
  /** Resolves once the receiver has read `total` bytes in all, or the channel has closed. */
  reached(total: number): Promise<void>;
  /** The content is sent: stop counting. */
  stop(): void;
}

/** For carriers without content: nothing to wait for. */
const NO_CREDITS: CreditWatch = { reached: () => Promise.resolve(), stop() {} };

// ---------------------------------------------------------------------------
// The IPC channel of fork()

/** The parent's end (a ChildProcess) or the child's (`process`). */
type IpcEndpoint = ChildProcess | NodeJS.Process;

export function ipcTransport(endpoint: IpcEndpoint): Transport {
  let sink: TransportSink | undefined;
  return {
    kind: 'ipc',
    attach(s) {
      sink = s;
      endpoint.on('message', (frame: unknown, handle: unknown) => sink?.frame(frame, handle));
      endpoint.on('disconnect', () => sink?.closed('IPC channel closed'));
    },
    send(frame, handle) {
      if (!endpoint.connected || !endpoint.send) return;
      // The callback swallows EPIPE from a peer that died since the
      // `connected` check; the 'disconnect' event reports it once.
      endpoint.send(frame, handle as Socket | undefined, { keepOpen: false }, () => {});
    },
    sendChunk() {
      throw new Error('message content does not travel over the IPC channel');
    },
    drained: () => Promise.resolve(),
    sendCredit() {},
    watchCredits: () => NO_CREDITS,
    sendAbandon() {},
    pause() {},
    resume() {},
    close() {
      if (endpoint.connected) endpoint.disconnect?.();
    },
  };
}

// ---------------------------------------------------------------------------
// Framed Unix-domain sockets

const KIND_JSON = 0;
const KIND_CHUNK = 1;
/** A receiver's credit: 4 bytes of message reference, 4 of how many more bytes of its content it has read. */
const KIND_CREDIT = 2;
/** A sender's word that a message's content stops here, unfinished: 4 bytes of message reference. */
const KIND_ABANDON = 3;
/** Larger frames are a protocol violation: a peer cannot make us buffer without bound. */
export const MAX_FRAME = 1 << 20;

/** Frames waiting to be written are written at once past this many bytes. */
const FLUSH_BYTES = 64 * 1024;

/** One JSON frame in one buffer: length (of kind and payload), kind, the JSON text. */
function jsonFrame(value: object): Buffer {
  const text = JSON.stringify(value);
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(5 + length);
  frame.writeUInt32BE(length + 1, 0);
  frame[4] = KIND_JSON;
  frame.write(text, 5, 'utf8');
  return frame;
}

/** The header of a chunk frame; the content follows it as it is, never copied into a bigger buffer. */
function chunkHeader(ref: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(9);
  header.writeUInt32BE(length + 5, 0);
  header[4] = KIND_CHUNK;
  header.writeUInt32BE(ref, 5);
  return header;
}

/** Cuts the byte stream back into frames, however the kernel split it. */
class FrameReader {
  private parts: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes; returns the complete frames, or throws if one announces more than MAX_FRAME. */
  push(data: Buffer): { kind: number; body: Buffer }[] {
    this.parts.push(data);
    this.buffered += data.length;
    const frames: { kind: number; body: Buffer }[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const length = head.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME + 5) throw new Error(`frame of ${length} bytes`);
      if (this.buffered < 4 + length) break;
      const frame = this.take(4 + length);
      frames.push({ kind: frame.readUInt8(4), body: frame.subarray(5) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.parts[0] && this.parts[0].length >= n) return this.parts[0];
    this.parts = [Buffer.concat(this.parts)];
    return this.parts[0] ?? Buffer.alloc(0);
  }

  private take(n: number): Buffer {
    const all = this.parts.length === 1 && this.parts[0] ? this.parts[0] : Buffer.concat(this.parts);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return frame;
  }
}

// #region flush-per-turn
/**
 * The frames sent during one turn of the event loop leave together, in
 * one writev(), at the end of the turn (setImmediate) or as soon as they
 * pass FLUSH_BYTES: a process that answers twenty requests after one read
 * makes one system call, and its peer wakes up once, not twenty times.
 * Alone, a frame waits for nothing but the rest of the current turn.
 * Order is kept: frames are written in the order they were sent.
 */
export function socketTransport(socket: Socket): Transport {
  let sink: TransportSink | undefined;
  let closed = false;
  /** The wait for the socket's next drain, shared by every sender that waits meanwhile. */
  let draining: Promise<void> | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  const flush = (): boolean => {
    scheduled = false;
    const parts = pending;
    pending = [];
    pendingBytes = 0;
    if (closed || parts.length === 0) return !socket.writableNeedDrain;
    socket.cork();
    let ok = true;
    for (const part of parts) ok = socket.write(part);
    socket.uncork();
    return ok;
  };
  /** Queues a frame's buffers; false when the socket is over its mark (wait for drained()). */
  const enqueue = (a: Buffer, b?: Uint8Array): boolean => {
    pending.push(a);
    pendingBytes += a.length;
    if (b) {
      pending.push(b as Buffer);
      pendingBytes += b.length;
    }
    if (pendingBytes >= FLUSH_BYTES) return flush();
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return !socket.writableNeedDrain;
  };
  // #endregion flush-per-turn
  /** Per message being sent: what the receiver has read of it, and who waits for it to read more. */
  const credits = new Map<number, { read: number; waiters: { total: number; resolve: () => void }[] }>();
  const credit = (ref: number, bytes: number) => {
    const entry = credits.get(ref);
    if (!entry) return; // a message whose sending has ended
    entry.read += bytes;
    entry.waiters = entry.waiters.filter((w) => (entry.read >= w.total ? (w.resolve(), false) : true));
  };
  /**
   * `refused`: this side drops the channel because of what came on it (a
   * frame that breaks the framing). The socket is then destroyed with
   * the reason as its error, so that whoever holds the socket besides
   * this transport (child.ts, for the links between children) learns
   * that the channel was dropped, and why, not merely that it closed.
   */
  const close = (reason: string, refused = false) => {
    if (closed) return;
    flush(); // what was sent before the close still goes, as if written at once
    closed = true;
    if (refused) socket.destroy(new ChannelRefused(reason));
    else socket.destroy();
    // A sender waiting for credits goes on, and learns of the close from sendChunk.
    for (const entry of credits.values()) for (const w of entry.waiters.splice(0)) w.resolve();
    sink?.closed(reason);
  };
  return {
    kind: 'socket',
    attach(s) {
      sink = s;
      const reader = new FrameReader();
      socket.on('data', (data: Buffer) => {
        let frames;
        try {
          frames = reader.push(data);
        } catch (err) {
          return close(`bad framing: ${(err as Error).message}`, true);
        }
        for (const { kind, body } of frames) {
          if (closed) return;
          if (kind === KIND_JSON) {
            let value: unknown;
            try {
              value = JSON.parse(body.toString('utf8'));
            } catch {
              return close('a frame is not JSON', true);
            }
            sink?.frame(value, undefined);
          } else if (kind === KIND_CHUNK && body.length >= 4) {
            sink?.chunk(body.readUInt32BE(0), body.subarray(4));
          } else if (kind === KIND_CREDIT && body.length === 8) {
            credit(body.readUInt32BE(0), body.readUInt32BE(4));
          } else if (kind === KIND_ABANDON && body.length === 4) {
            sink?.abandoned?.(body.readUInt32BE(0));
          } else {
            return close(`unknown frame kind ${kind}`, true);
          }
        }
      });
      socket.on('error', (err) => close(err.message));
      socket.on('close', () => close('socket closed'));
    },
    send(frame, handle) {
      if (handle) throw new Error('handles travel over the IPC channel only');
      if (!closed) enqueue(jsonFrame(frame));
    },
    sendChunk(ref, bytes) {
      if (closed) throw new Error('the channel is closed');
      if (bytes.length > MAX_FRAME) throw new Error(`chunk of ${bytes.length} bytes: split it`);
      return enqueue(chunkHeader(ref, bytes.length), bytes);
    },
    drained() {
      if (closed || !socket.writableNeedDrain) return Promise.resolve();
      // Every sender waiting now waits for the same drain: one listener, however many of them.
      draining ??= new Promise((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          draining = undefined;
          resolve();
        };
        socket.once('drain', done);
        socket.once('close', done);
      });
      return draining;
    },
    sendCredit(ref, bytes) {
      if (closed) return;
      const frame = Buffer.allocUnsafe(13);
      frame.writeUInt32BE(9, 0);
      frame[4] = KIND_CREDIT;
      frame.writeUInt32BE(ref, 5);
      frame.writeUInt32BE(bytes, 9);
      enqueue(frame);
    },
    sendAbandon(ref) {
      if (closed) return;
      const frame = Buffer.allocUnsafe(9);
      frame.writeUInt32BE(5, 0);
      frame[4] = KIND_ABANDON;
      frame.writeUInt32BE(ref, 5);
      enqueue(frame);
    },
    watchCredits(ref) {
      const entry = { read: 0, waiters: [] as { total: number; resolve: () => void }[] };
      credits.set(ref, entry);
      return {
        reached: (total) =>
          closed || entry.read >= total ? Promise.resolve() : new Promise((resolve) => entry.waiters.push({ total, resolve })),
        stop: () => {
          if (credits.get(ref) === entry) credits.delete(ref);
        },
      };
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => close('closed by this side'),
  };
}
