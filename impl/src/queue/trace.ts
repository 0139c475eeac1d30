/**
 * Watching a queue backend at work: `trace queue` writes one line per
 * backend call with its result and duration, and `profile queue` counts
 * calls and milliseconds per operation (OpenSMTPD's `smtpctl trace queue`
 * and `smtpctl profile queue`). Both wrap any backend, so fs and ram are
 * measured the same way, and a backend pays nothing when neither is on.
 */
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, QueueBackend } from './backend.ts';
import { formatEnvelopeId, formatMessageId } from './ids.ts';
import type { Envelope } from './types.ts';

/** Where trace lines go. */
export type TraceSink = (line: string) => void;

/** Calls and total milliseconds of one operation. */
export interface OpProfile {
  op: string;
  calls: number;
  totalMs: number;
}

/** Counters per operation (createMessage, write, commit, ...). */
export class QueueProfile {
  private readonly ops = new Map<string, OpProfile>();

  record(op: string, ms: number): void {
    const entry = this.ops.get(op) ?? { op, calls: 0, totalMs: 0 };
    entry.calls += 1;
    entry.totalMs += ms;
    this.ops.set(op, entry);
  }

  /** The counters, by operation name. */
  snapshot(): OpProfile[] {
    return [...this.ops.values()].map((e) => ({ ...e })).sort((a, b) => a.op.localeCompare(b.op));
  }

  /** One line per operation: `commit  calls=1000  total=812.4ms  mean=0.812ms`. */
  format(): string {
    return this.snapshot()
      .map((e) => `${e.op.padEnd(14)} calls=${e.calls}  total=${e.totalMs.toFixed(1)}ms  mean=${(e.totalMs / e.calls).toFixed(3)}ms`)
      .join('\n');
  }

  reset(): void {
    this.ops.clear();
  }
}

export interface InstrumentOptions {
  trace?: TraceSink;
  profile?: QueueProfile;
}

/** The backend itself when there is nothing to record, else a wrapper that records every call. */
export function instrumentBackend(backend: QueueBackend, options: InstrumentOptions): QueueBackend {
  const { trace, profile } = options;
  if (!trace && !profile) return backend;

  const call = async <T>(op: string, args: string, run: () => Promise<T>, show: (r: T) => string): Promise<T> => {
    const t0 = performance.now();
    let result: string;
    try {
      const value = await run();
      result = show(value);
      return value;
    } catch (err) {
      result = `error: ${err instanceof Error ? err.message : String(err)}`;
      throw err;
    } finally {
      const ms = performance.now() - t0;
      profile?.record(op, ms);
      trace?.(`queue-backend: ${op}(${args}) -> ${result!} (${ms.toFixed(3)} ms)`);
    }
  };
  const ok = () => 'ok';
  const ids = (es: Envelope[]) => es.map((e) => formatEnvelopeId(e.id)).join(',');

  const wrapMessage = (m: IncomingMessage): IncomingMessage => {
    const msg = formatMessageId(m.id);
    return {
      id: m.id,
      write: (chunk) => call('write', `${msg}, ${chunk.byteLength} bytes`, () => m.write(chunk), ok),
      commit: (evps) => call('commit', `${msg}, ${evps.length} envelopes`, () => m.commit(evps), ids),
      abort: () => call('abort', msg, () => m.abort(), ok),
    };
  };

  return {
    name: backend.name,
    createMessage: () =>
      call('createMessage', '', async () => wrapMessage(await backend.createMessage()), (m) => formatMessageId(m.id)),
    recover: () => tracedRecover(backend.recover(), options),
    loadEnvelope: (id) =>
      call('loadEnvelope', formatEnvelopeId(id), () => backend.loadEnvelope(id), (e) => (e ? 'found' : 'none')),
    updateEnvelope: (e) => call('updateEnvelope', formatEnvelopeId(e.id), () => backend.updateEnvelope(e), ok),
    deleteEnvelope: (id) => call('deleteEnvelope', formatEnvelopeId(id), () => backend.deleteEnvelope(id), ok),
    openMessage: (id) => call('openMessage', formatMessageId(id), () => backend.openMessage(id), ok),
    close: () => call('close', '', () => backend.close(), ok),
  };
}

/** recover() is one call however many envelopes it yields: timed over its own work, not the consumer's. */
async function* tracedRecover(source: AsyncIterable<Envelope>, { trace, profile }: InstrumentOptions) {
  const it = source[Symbol.asyncIterator]();
  let count = 0;
  let ms = 0;
  let result = '';
  try {
    for (;;) {
      const t0 = performance.now();
      const next = await it.next();
      ms += performance.now() - t0;
      if (next.done) break;
      count += 1;
      yield next.value;
    }
    result = `${count} envelopes`;
  } catch (err) {
    result = `error after ${count} envelopes: ${err instanceof Error ? err.message : String(err)}`;
    throw err;
  } finally {
    if (!result) {
      result = `stopped after ${count} envelopes`;
      await it.return?.();
    }
    profile?.record('recover', ms);
    trace?.(`queue-backend: recover() -> ${result} (${ms.toFixed(3)} ms)`);
  }
}
