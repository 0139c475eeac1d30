/**
 * The child of ipc-roundtrip.ts: answers echoes from anyone, and on
 * request runs a loop of round trips to its sibling, directly over a
 * socket the parent made, or relayed through the parent.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/log/index.ts';
import { Peer } from '../src/proc/peer.ts';
import { ipcTransport, socketTransport } from '../src/proc/transport.ts';
import { benchChannel, relayChannel, type Timing } from './ipc-roundtrip-channel.ts';

const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground' });
let sibling: Peer<typeof benchChannel['calls'], typeof benchChannel['calls']> | undefined;
process.on('disconnect', () => process.exit(0));

async function loop(count: number, call: () => Promise<unknown>): Promise<Timing> {
  for (let i = 0; i < 200; i++) await call(); // warm up the JIT and the buffers
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call();
    times.push((performance.now() - t0) * 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(count / 2)] ?? 0, p99: times[Math.floor(count * 0.99)] ?? 0 };
}

const echo = ({ n, pad }: { n: number; pad: string }) => ({ n, pad });

const parent: Peer<typeof benchChannel['calls'], typeof relayChannel['calls']> = new Peer({
  self: 'child', peer: 'parent', transport: ipcTransport(process), log, calls: relayChannel,
  serves: {
    channel: benchChannel,
    handlers: {
      'bench.echo': echo,
      'bench.link': (_msg, handle) => {
        const socket = handle as Socket;
        sibling = new Peer({
          self: 'child', peer: 'sibling', transport: socketTransport(socket), log, calls: benchChannel,
          serves: { channel: benchChannel, handlers: { 'bench.echo': echo, 'bench.link': () => ({}), 'bench.run': () => ({ p50: 0, p99: 0 }) } },
        });
        socket.resume();
        return {};
      },
      'bench.run': async ({ via, count, pad }) => {
        if (via === 'socket') return loop(count, () => sibling!.request({ type: 'bench.echo', n: 1, pad }));
        return loop(count, () => parent.request({ type: 'bench.relay', n: 1, pad }));
      },
    },
  },
});
