/**
 * What one request and its answer cost between two processes, three ways:
 *
 *   node --import tsx impl/bench/ipc-roundtrip.ts [--count 5000] [--size 200]
 *
 *   parent <-> child    over fork()'s IPC channel (JSON lines on a socketpair)
 *   child  <-> child    over a Unix socket the parent made (links.ts), framed
 *   child  <-> child    relayed by the parent: two IPC hops each way
 *
 * Each is a loop of sequential round trips of one small JSON request (a
 * `--size`-byte string, about what lookup.rcpt carries), through the
 * Peer class, schemas included, so it is what the daemon pays. Printed:
 * the median and the 99th percentile, in microseconds.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/log/index.ts';
import { socketPair } from '../src/parent/links.ts';
import { Peer } from '../src/proc/peer.ts';
import { forkChild } from '../src/proc/spawn.ts';
import { ipcTransport } from '../src/proc/transport.ts';
import { benchChannel, relayChannel } from './ipc-roundtrip-channel.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '5000' }, size: { type: 'string', default: '200' } } });
const count = Number(values.count);
const pad = 'x'.repeat(Number(values.size));
const entry = fileURLToPath(new URL('./ipc-roundtrip-child.ts', import.meta.url));
const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground' });

type ParentPeer = Peer<typeof relayChannel['calls'], typeof benchChannel['calls']>;
const procs = [forkChild('a', { entry }), forkChild('b', { entry })];
const peers: ParentPeer[] = [];
for (const [i, proc] of procs.entries()) {
  peers.push(new Peer({
    self: 'parent', peer: 'child', transport: ipcTransport(proc), log, calls: benchChannel, timeoutMs: 120_000,
    serves: {
      channel: relayChannel,
      // Relaying: what the parent would do if children had no socket of their own.
      handlers: { 'bench.relay': ({ n, pad: p }) => peers[1 - i]!.request({ type: 'bench.echo', n, pad: p }) },
    },
  }));
}
const [a, b] = peers as [ParentPeer, ParentPeer];

const [endA, endB] = await socketPair();
await a.request({ type: 'bench.link' }, { handle: endA });
await b.request({ type: 'bench.link' }, { handle: endB });

const times: number[] = [];
for (let i = 0; i < 200 + count; i++) {
  const t0 = performance.now();
  await a.request({ type: 'bench.echo', n: i, pad });
  if (i >= 200) times.push((performance.now() - t0) * 1000);
}
times.sort((x, y) => x - y);
const row = (what: string, t: { p50: number; p99: number }) =>
  console.log(`${what.padEnd(34)} p50 ${t.p50.toFixed(0).padStart(5)} µs   p99 ${t.p99.toFixed(0).padStart(5)} µs`);
row('parent <-> child, IPC channel', { p50: times[Math.floor(count / 2)] ?? 0, p99: times[Math.floor(count * 0.99)] ?? 0 });
row('child <-> child, direct socket', await a.request({ type: 'bench.run', via: 'socket', count, pad }));
row('child <-> child, through parent', await a.request({ type: 'bench.run', via: 'relay', count, pad }));
for (const p of procs) p.disconnect();
