/**
 * The queue: its types, its backends, and how the queue process opens one.
 *
 * The backend is chosen by name at start-up (`queue backend fs|log|ram`), as
 * OpenSMTPD's queue_init() chooses one; `trace queue` and `profile queue`
 * wrap it with the recorders of trace.ts.
 */
import type { QueueBackend } from './backend.ts';
import type { ValidateOptions } from './envelope-format.ts';
import { openFsBackend } from './fs-backend.ts';
import type { QueueLog } from './fs-recover.ts';
import { openLogBackend } from './log-backend.ts';
import { RamQueueBackend } from './ram-backend.ts';
import type { SpoolIo } from './spool-io.ts';
import { instrumentBackend, type QueueProfile, type TraceSink } from './trace.ts';

export type { IncomingMessage, QueueBackend } from './backend.ts';
export type { DsnRequest, Envelope, EnvelopeId, MailAddress, MessageId, Origin } from './types.ts';
export { formatEnvelopeId, formatMessageId, isEnvelopeId, isMessageId, messageIdOf, parseEnvelopeId, parseMessageId } from './ids.ts';
export { QueueProfile, type TraceSink } from './trace.ts';
export type { QueueLog } from './fs-recover.ts';

export const QUEUE_BACKENDS = ['fs', 'log', 'ram'] as const;
export type QueueBackendName = (typeof QUEUE_BACKENDS)[number];

/** Where the spool is when smtpd.conf does not say: OpenSMTPD's as root, a local one otherwise. */
export function defaultSpool(): string {
  return process.getuid?.() === 0 ? '/var/spool/smtpd' : './var/spool';
}

/**
 * The size of libuv's thread pool the queue process should start with
 * (environment variable UV_THREADPOOL_SIZE, read once, when the pool is
 * first used; the parent sets it when it forks the queue). Every file
 * system call of Node runs on that pool, and an fsync holds its thread
 * until the disk answers: with libuv's default of 4 threads, four fsyncs
 * in flight stall every other file operation of the queue, from creating
 * the next message to reading one for delivery. With 16, the fsyncs of
 * many concurrent commits wait for the disk side by side. Measured with
 * impl/bench/queue-commit.ts on 2 cores: 16 threads committed about 1.5
 * times as many messages per second as 4, with 20 or 100 writers; 32 did
 * no better than 16.
 */
export const QUEUE_THREADPOOL_SIZE = 16;

export interface OpenQueueOptions {
  /** The spool directory, for `fs` and `log`; default defaultSpool(). */
  spool?: string;
  /** Checks envelopes read back against smtpd.conf (its action names). */
  validate?: ValidateOptions;
  /** Warnings (corrupt files) go here; default stderr. */
  log?: QueueLog;
  /** `trace queue`: one line per backend call. */
  trace?: TraceSink;
  /** `profile queue`: calls and time per operation. */
  profile?: QueueProfile;
  /** For tests and the benchmark only: the durability calls of `fs` and `log`. */
  io?: SpoolIo;
}

/** Opens the queue backend called `name`; throws for a name that is not one. */
export async function openQueueBackend(name: string, options: OpenQueueOptions = {}): Promise<QueueBackend> {
  let backend: QueueBackend;
  const onDisk = () => ({
    spool: options.spool ?? defaultSpool(),
    ...(options.io && { io: options.io }),
    ...(options.validate && { validate: options.validate }),
    ...(options.log && { log: options.log }),
  });
  switch (name) {
    case 'fs':
      backend = await openFsBackend(onDisk());
      break;
    case 'log':
      backend = await openLogBackend(onDisk());
      break;
    case 'ram':
      backend = new RamQueueBackend(options.validate);
      break;
    default:
      throw new Error(`queue: unknown backend "${name}" (expected ${QUEUE_BACKENDS.slice(0, -1).join(', ')} or ${QUEUE_BACKENDS.at(-1)})`);
  }
  return instrumentBackend(backend, {
    ...(options.trace && { trace: options.trace }),
    ...(options.profile && { profile: options.profile }),
  });
}
