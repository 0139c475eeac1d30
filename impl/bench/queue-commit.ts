/**
 * How many messages per second the queue commits, and at what latency,
 * with 1, 4, 20 and 100 sessions committing at once.
 *
 *   node --import tsx impl/bench/queue-commit.ts [--seconds 3] [--writers 1,4,20,100]
 *                                               [--no-fsync] [--spool DIR]
 *
 * Each writer loops: create a message, write 2 KiB, commit it with one
 * envelope. Printed per run: commits per second, the p50 and p99 of
 * commit() alone (the time between the end of DATA and the 250), the CPU
 * time per commit of the whole process (event loop and libuv's threads:
 * process.cpuUsage counts every thread) and the part of it spent in the
 * kernel, and the mean group-commit batch.
 * `--no-fsync` renames without any fsync, as OpenSMTPD 6.8 does, to show
 * what the durability promise costs. The spool is a fresh directory under
 * the system's temporary directory for every run (pass --spool to put it
 * on the disk you care about).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { IncomingMessage } from '../src/queue/backend.ts';
import { openFsBackend } from '../src/queue/fs-backend.ts';
import { QUEUE_THREADPOOL_SIZE } from '../src/queue/index.ts';
import { durableIo, noSyncIo } from '../src/queue/spool-io.ts';
import type { Envelope } from '../src/queue/types.ts';

// libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, which
// may be before this line runs (the TypeScript loader reads files); so
// the benchmark starts itself again with the variable set, as the parent
// process starts the queue.
if (process.env['UV_THREADPOOL_SIZE'] === undefined) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(QUEUE_THREADPOOL_SIZE) },
  });
  process.exit(r.status ?? 1);
}

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    writers: { type: 'string', default: '1,4,20,100' },
    'no-fsync': { type: 'boolean', default: false },
    spool: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const WRITERS = args.writers.split(',').map(Number);
const CONTENT = Buffer.alloc(2048, 'x');
const TEMPLATE: Omit<Envelope, 'id' | 'messageId'> = {
  sender: { user: 'alice', domain: 'example.org' },
  recipient: { user: 'bob', domain: 'example.net' },
  originalRecipient: { user: 'bob', domain: 'example.net' },
  dispatcher: 'relay',
  origin: { clientAddress: '192.0.2.1', clientName: 'mail.example.org', helo: 'mail.example.org' },
  createdAt: 1_700_000_000,
  expiresAt: 1_700_345_600,
  attempts: 0,
};

interface Result {
  commits: number;
  latencies: number[];
  cpuMs: number;
  /** The part of cpuMs spent in the kernel. */
  sysMs: number;
  batch: number;
}

/**
 * Spools are removed at the end, not after each run: on ext4 without a
 * journal, files deleted in the last half minute slow down the creation
 * of new ones, and one run's cleanup would be billed to the next run.
 */
const spools: string[] = [];

async function run(writers: number): Promise<Result> {
  const spool = mkdtempSync(join(args.spool ?? tmpdir(), 'queue-bench-'));
  spools.push(spool);
  const backend = await openFsBackend({ spool, io: args['no-fsync'] ? noSyncIo : durableIo });
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;

  const writer = async () => {
    while (!stop) {
      const message: IncomingMessage = await backend.createMessage();
      await message.write(CONTENT);
      const t0 = performance.now();
      await message.commit([TEMPLATE]);
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const done = Promise.all(Array.from({ length: writers }, writer));

  await sleep(500); // warm up: JIT, directories, file system caches
  const batches0 = { ...backend.stats };
  const cpu0 = process.cpuUsage();
  measuring = true;
  await sleep(SECONDS * 1000);
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const batches1 = backend.stats;
  stop = true;
  await done;
  await backend.close();

  const batch = (batches1.items - batches0.items) / (batches1.batches - batches0.batches);
  return { commits: latencies.length, latencies, cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000, batch };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const mode = args['no-fsync'] ? 'fs, NO fsync' : 'fs, fsync';
console.log(
  `queue-commit: ${mode}; 2 KiB, 1 envelope; ${SECONDS} s per run; UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE']}`,
);
console.log('writers  commits/s  p50 ms  p99 ms  CPU ms/commit  (in kernel)  mean batch');
for (const writers of WRITERS) {
  const r = await run(writers);
  const sorted = r.latencies.sort((a, b) => a - b);
  console.log(
    [
      String(writers).padStart(7),
      (r.commits / SECONDS).toFixed(0).padStart(10),
      percentile(sorted, 50).toFixed(2).padStart(7),
      percentile(sorted, 99).toFixed(2).padStart(7),
      (r.cpuMs / r.commits).toFixed(3).padStart(14),
      `(${(r.sysMs / r.commits).toFixed(3)})`.padStart(12),
      r.batch.toFixed(1).padStart(11),
    ].join(' '),
  );
}
for (const spool of spools) rmSync(spool, { recursive: true, force: true });
