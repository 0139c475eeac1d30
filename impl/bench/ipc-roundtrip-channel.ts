/** The messages of ipc-roundtrip.ts. */
import { channel } from '../src/proc/protocol.ts';
import { number, object, oneOf, string, uint32 } from '../src/proc/schema.ts';

const timing = object({ p50: number, p99: number });
export type Timing = { p50: number; p99: number };

export const benchChannel = channel('bench', {
  'bench.echo': { request: object({ n: number, pad: string }), response: object({ n: number, pad: string }) },
  'bench.link': { request: object({}), response: object({}), handle: 'socket' },
  'bench.run': { request: object({ via: oneOf(['socket', 'relay']), count: uint32, pad: string }), response: timing },
});

export const relayChannel = channel('relay', {
  'bench.relay': { request: object({ n: number, pad: string }), response: object({ n: number, pad: string }) },
});
