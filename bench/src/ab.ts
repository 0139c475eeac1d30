/**
 * node --import tsx bench/src/ab.ts --a 'CMD' --b 'CMD' [--sessions 4] [--messages 100] [--rounds 6]
 *
 * A/B comparison of two server commands (SAF_SMTPD_CMD templates, e.g. the
 * same daemon from two checkouts), both started once, warmed up, then
 * measured in alternation, round after round, so that a machine whose load
 * changes under us (other people's tests) skews both alike. Prints each
 * round and the medians: messages/s end to end and server CPU per message
 * (every thread of the process tree, from /proc/<pid>/task/<tid>/schedstat).
 * Maildir/new is not emptied between rounds (see breakdown.ts).
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runLoad } from './load-client.ts';
import { countFiles, sleep } from './proc.ts';
import { ours } from './servers/ours.ts';
import type { RunningServer } from './servers/types.ts';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' }, b: { type: 'string' },
    sessions: { type: 'string' }, messages: { type: 'string' }, connections: { type: 'string' },
    rounds: { type: 'string' },
  },
  strict: true,
});

function treeNs(root: number): number {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  let ns = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // gone
    }
    for (const [child, p] of parent) if (p === pid) stack.push(child);
  }
  return ns;
}

async function start(cmd: string): Promise<RunningServer> {
  process.env.SAF_SMTPD_CMD = cmd;
  const srv = await ours.start();
  await runLoad({ port: srv.port, rcpt: srv.rcpt, concurrency: 10, messagesPerSession: 100, timeoutMs: 10_000 });
  return srv;
}

async function measure(srv: RunningServer): Promise<{ rate: number; cpu: number }> {
  const n = Number(args.sessions ?? 4);
  const conns = Number(args.connections ?? 0);
  const planned = conns > 0 ? conns : n * Number(args.messages ?? 100);
  const base = countFiles(srv.maildirNew);
  const cpu0 = treeNs(srv.pid);
  const t0 = performance.now();
  const r = await runLoad({
    port: srv.port, rcpt: srv.rcpt, timeoutMs: 10_000,
    ...(conns > 0
      ? { mode: 'per-connection' as const, concurrency: n, messagesPerSession: 1, connections: conns }
      : { mode: 'sessions' as const, concurrency: n, messagesPerSession: Number(args.messages ?? 100), connections: 0 }),
  });
  while (countFiles(srv.maildirNew) - base < r.accepted && performance.now() - t0 < 60_000) await sleep(5);
  const wall = (performance.now() - t0) / 1000;
  return { rate: planned / wall, cpu: (treeNs(srv.pid) - cpu0) / 1e6 / planned };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const a = await start(args.a!);
const b = await start(args.b!);
const res = { a: [] as { rate: number; cpu: number }[], b: [] as { rate: number; cpu: number }[] };
try {
  for (let round = 0; round < Number(args.rounds ?? 6); round++) {
    for (const [name, srv] of (round % 2 === 0 ? [['a', a], ['b', b]] : [['b', b], ['a', a]]) as [keyof typeof res, RunningServer][]) {
      await sleep(200);
      const m = await measure(srv);
      res[name].push(m);
      console.log(`round ${round} ${name}: ${m.rate.toFixed(0)} msg/s, ${m.cpu.toFixed(2)} ms CPU/msg`);
    }
  }
  for (const name of ['a', 'b'] as const) {
    console.log(`${name}: median ${median(res[name].map((m) => m.rate)).toFixed(0)} msg/s, ${median(res[name].map((m) => m.cpu)).toFixed(2)} ms CPU/msg`);
  }
} finally {
  await a.stop();
  await b.stop();
  for (const srv of [a, b]) rmSync(srv.dir, { recursive: true, force: true });
}
