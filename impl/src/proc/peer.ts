/**
 * One end of a channel: sends requests and waits for their answers,
 * answers the requests the other end sends, and checks everything that
 * arrives against the channel's schemas before any handler sees it.
 *
 *     const queue = new Peer({ self: 'smtp', peer: 'queue', transport, calls: queueChannel, log });
 *     const { msgid } = await queue.request({ type: 'queue.message.create' });
 */
import { Server, Socket } from 'node:net';
import type { Logger } from '../log/index.ts';
import type { Channel, Calls, Handlers, HandleKind, RequestOf, ResponseOf } from './protocol.ts';
import { ProtocolError } from './schema.ts';
import type { Transport } from './transport.ts';

/** The other side did not answer in time. The request may still have been carried out. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** The handler on the other side threw; `message` is its message. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
}

/** The channel closed before the answer came. */
export class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
}

/** The channels of this file carry no empty request set by default. */
type NoCalls = Record<never, never>;

export interface PeerOptions<In extends Calls, Out extends Calls> {
  /** This process's name and the other side's, for log lines: `smtp`, `queue`. */
  self: string;
  peer: string;
  transport: Transport;
  log: Logger;
  /** The requests this side answers, with one handler each. */
  serves?: { channel: Channel<In>; handlers: Handlers<In> };
  /** The requests this side sends. */
  calls?: Channel<Out>;
  /** How long a request waits for its answer unless it says otherwise; 30 s by default. */
  timeoutMs?: number;
  /** Content chunks (socket transports only). */
  onChunk?: (ref: number, bytes: Buffer) => void;
  /** The sender stopped sending a message's content before its end. */
  onAbandon?: (ref: number) => void;
  onClose?: (reason: string) => void;
}

interface Pending {
  type: string;
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Peer<In extends Calls = NoCalls, Out extends Calls = NoCalls> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedReason: string | undefined;
  /** How many malformed messages were refused: a test's window on the boundary. */
  violations = 0;

  constructor(private readonly options: PeerOptions<In, Out>) {
    options.transport.attach({
      frame: (frame, handle) => this.receive(frame, handle),
      chunk: (ref, bytes) => this.chunk(ref, bytes),
      abandoned: (ref) => this.abandoned(ref),
      closed: (reason) => this.closed(reason),
    });
  }

  get transport(): Transport {
    return this.options.transport;
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  // #region request
  /**
   * Sends a request and resolves with its answer, checked against the
   * channel's response schema. Every request has an id, so answers may
   * come back in any order, and a deadline: a peer that never answers
   * costs the caller a TimeoutError, not a session stuck forever. A late
   * answer, after the deadline, is dropped.
   */
  request<M extends RequestOf<Out>>(
    msg: M,
    options: { timeoutMs?: number; handle?: Server | Socket } = {},
  ): Promise<ResponseOf<Out, M['type']>> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new ChannelClosedError(`${this.options.peer}: ${this.closedReason}`));
    }
    const id = this.nextId++;
    const ms = options.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`${this.options.peer} did not answer ${msg.type} within ${ms} ms`));
      }, ms);
      this.pending.set(id, { type: msg.type, resolve: resolve as (body: unknown) => void, reject, timer });
      this.trace('->', msg.type);
      this.options.transport.send({ kind: 'request', id, msg }, options.handle);
    });
  }
  // #endregion request

  /** Sends a request that wants no answer (id 0): a notice. */
  notify(msg: RequestOf<Out>, handle?: Server | Socket): void {
    if (this.closedReason !== undefined) return;
    this.trace('->', `${msg.type} (notice)`);
    this.options.transport.send({ kind: 'request', id: 0, msg }, handle);
  }

  close(): void {
    this.options.transport.close();
  }

  // #region boundary
  /**
   * Everything that arrives goes through here. The frame must be one of
   * ours, the type one this side serves, the body must match its schema,
   * and a request that needs a handle must carry one of the right kind.
   * Anything else is refused: logged, answered with an error if it had an
   * id, and never handed to a handler. The handler gets a fresh object
   * holding only the fields the schema declares.
   *
   * A handle is a descriptor Node has already opened in this process,
   * and a peer may attach one to any message. Unless it goes to a
   * handler that takes one, it is closed here: kept, each such message
   * would cost a descriptor for good.
   */
  private receive(frame: unknown, handle: unknown): void {
    let id = 0;
    let handed = false;
    try {
      if (!isRecord(frame) || typeof frame.id !== 'number' || !Number.isInteger(frame.id) || frame.id < 0) {
        throw new ProtocolError('frame', 'an object with a numeric id');
      }
      id = frame.id;
      if (frame.kind === 'response') return this.answer(id, frame);
      if (frame.kind !== 'request' || !isRecord(frame.msg) || typeof frame.msg.type !== 'string') {
        throw new ProtocolError('frame', 'a request or a response');
      }
      const type = frame.msg.type;
      const served = this.options.serves;
      const spec = served && Object.hasOwn(served.channel.calls, type) ? served.channel.calls[type] : undefined;
      if (!served || !spec) throw new ProtocolError('type', `a request of channel ${served?.channel.name ?? '(none)'}, not "${type}"`);
      const body = spec.request.parse(frame.msg, type);
      if (spec.handle && !isHandle(handle, spec.handle)) throw new ProtocolError(type, `a ${spec.handle} handle`);
      this.trace('<-', type);
      const handler = served.handlers[type] as (msg: unknown, handle: unknown) => unknown;
      handed = spec.handle !== undefined;
      this.run(id, type, () => handler({ ...body, type }, handed ? handle : undefined));
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.violations++;
      this.options.log.warn(`warn: ${this.options.self}: refused a malformed message from ${this.options.peer}: ${err.message}`);
      if (id !== 0) this.options.transport.send({ kind: 'response', id, ok: false, error: `malformed message: ${err.message}` });
    } finally {
      if (!handed) discard(handle);
    }
  }
  // #endregion boundary

  private run(id: number, type: string, call: () => unknown): void {
    Promise.resolve()
      .then(call)
      .then(
        (body) => {
          if (id !== 0) this.options.transport.send({ kind: 'response', id, ok: true, body: body ?? null });
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          this.options.log.debug(`debug: ${this.options.self}: ${type} from ${this.options.peer} failed: ${message}`);
          if (id !== 0) this.options.transport.send({ kind: 'response', id, ok: false, error: message });
        },
      );
  }

  private answer(id: number, frame: Record<string, unknown>): void {
    const pending = this.pending.get(id);
    if (!pending) {
      this.options.log.debug(`debug: ${this.options.self}: late or unknown answer ${id} from ${this.options.peer}`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    this.trace('<-', `${pending.type} (answer)`);
    if (frame.ok !== true) {
      pending.reject(new RemoteError(typeof frame.error === 'string' ? frame.error : 'failed'));
      return;
    }
    const spec = this.options.calls?.calls[pending.type];
    try {
      pending.resolve(spec ? spec.response.parse(frame.body, `${pending.type} answer`) : frame.body);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.violations++;
      this.options.log.warn(`warn: ${this.options.self}: refused a malformed answer from ${this.options.peer}: ${err.message}`);
      pending.reject(err);
    }
  }

  private chunk(ref: number, bytes: Buffer): void {
    if (this.options.onChunk) return this.options.onChunk(ref, bytes);
    this.violations++;
    this.options.log.warn(`warn: ${this.options.self}: ${this.options.peer} sent content on a channel that takes none`);
  }

  private abandoned(ref: number): void {
    if (this.options.onAbandon) return this.options.onAbandon(ref);
    this.violations++;
    this.options.log.warn(`warn: ${this.options.self}: ${this.options.peer} abandoned content on a channel that takes none`);
  }

  private closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ChannelClosedError(`${this.options.peer}: ${reason}`));
      this.pending.delete(id);
    }
    this.options.onClose?.(reason);
  }

  private trace(direction: '->' | '<-', type: string): void {
    this.options.log.trace('imsg', `imsg: ${this.options.self} ${direction} ${this.options.peer}: ${type}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Closes a handle nobody takes (see receive). */
function discard(handle: unknown): void {
  if (handle instanceof Socket) handle.destroy();
  else if (handle instanceof Server) handle.close();
}

function isHandle(handle: unknown, kind: HandleKind): boolean {
  return kind === 'server' ? handle instanceof Server : handle instanceof Socket;
}
