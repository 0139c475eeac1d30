import { createLogger, type Logger } from '../../src/log/index.ts';
import type { Transport, TransportSink } from '../../src/proc/transport.ts';

/** A logger whose lines the test can read. */
export function memoryLogger(verbose = 1): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({ verbose, trace: new Set(['imsg']), format: 'foreground', write: (l) => lines.push(l.trimEnd()) });
  return { log, lines };
}

/**
 * Two transports joined in memory. Every frame goes through JSON, as it
 * would over a real channel, and arrives on a later turn of the event loop.
 */
export function memoryPair(): [Transport, Transport] {
  const sinks: (TransportSink | undefined)[] = [undefined, undefined];
  let open = true;
  const end = (self: 0 | 1): Transport => {
    const other = self === 0 ? 1 : 0;
    return {
      kind: 'ipc',
      attach: (sink) => {
        sinks[self] = sink;
      },
      send: (frame) => {
        const text = JSON.stringify(frame);
        setImmediate(() => open && sinks[other]?.frame(JSON.parse(text), undefined));
      },
      sendChunk: () => {
        throw new Error('no chunks in memory');
      },
      drained: () => Promise.resolve(),
      sendCredit() {},
      watchCredits: () => ({ reached: () => Promise.resolve(), stop() {} }),
      sendAbandon() {},
      pause() {},
      resume() {},
      close: () => {
        if (!open) return;
        open = false;
        sinks[0]?.closed('closed');
        sinks[1]?.closed('closed');
      },
    };
  };
  return [end(0), end(1)];
}

/** Sends a raw frame on a transport, bypassing the Peer's types: what a buggy or hostile peer could send. */
export function rawSend(transport: Transport, frame: object): void {
  transport.send(frame);
}
