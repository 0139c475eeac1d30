/**
 * node --import tsx bench/src/breakdown.ts [--sessions 20] [--messages 100] [--connections 0]
 *        [--rounds 1] [--warmup 20x100] [--strace PREFIX] [--strace-detail NAME] [--perf FILE] [--perf-stat PREFIX]
 *        [--cpu-prof DIR] [--queue fs|log]
 *
 * Where our server's CPU goes: starts it as the benchmark does (honours
 * SAF_SMTPD_CMD), warms it up, runs a load `rounds` times, and prints each
 * process's CPU time per message, and its wait for a CPU, by process title (`smtpd: queue`,
 * `smtpd: delivery agent for nobody`, ...): every thread's exact time
 * from /proc/<pid>/task/<tid>/schedstat, with the user/system split
 * from /proc/<pid>/stat (10 ms ticks). Options attach tools for the
 * length of each load: `strace -c` per process (--strace), `strace -tt -T`
 * (each call's time and duration) of one process (--strace-detail scheduler), `perf record -g` of the
 * whole tree (--perf), `perf stat` of context switches (--perf-stat);
 * --cpu-prof has every child write a V8 CPU profile into DIR and prints,
 * per process, where its time went in the last rounds (cpu-profile.ts).
 * JavaScript frames have names in perf only if the children run with
 * --perf-basic-prof.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfile } from './cpu-profile.ts';
import { runLoad } from './load-client.ts';
import { commandLine } from './command-line.ts';
import { CLK_TCK, countFiles, moveToCur, sleep } from './proc.ts';
import { oursWith } from './servers/ours.ts';

const USAGE =
  'usage: node --import tsx bench/src/breakdown.ts [--sessions 20] [--messages 100] [--connections 0]\n' +
  '         [--rounds 1] [--warmup 20x100] [--strace PREFIX] [--strace-detail NAME] [--perf FILE] [--perf-stat PREFIX]\n' +
  '         [--cpu-prof DIR] [--queue fs|log]\n';

const args = commandLine({
  sessions: { type: 'string' },
  messages: { type: 'string' },
  connections: { type: 'string' },
  rounds: { type: 'string' },
  strace: { type: 'string' },
  'strace-detail': { type: 'string' },
  perf: { type: 'string' },
  queue: { type: 'string' },
  warmup: { type: 'string' },
  'perf-stat': { type: 'string' },
  'cpu-prof': { type: 'string' },
}, USAGE);

interface Sample { pid: number; ppid: number; name: string; user: number; sys: number; ns: number; waitNs: number }

/**
 * CPU time of every thread of a process, and the time its threads were
 * ready to run but waited for a CPU, in nanoseconds (schedstat is exact;
 * stat counts 10 ms ticks).
 */
function threadsNs(pid: string): { ns: number; waitNs: number } {
  let ns = 0;
  let waitNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(run);
      waitNs += Number(wait);
    } catch {
      // gone
    }
  }
  return { ns, waitNs };
}

function snapshot(): Map<number, Sample> {
  const out = new Map<number, Sample>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
      out.set(Number(entry), { pid: Number(entry), ppid: Number(f[1]), name: cmd, user: Number(f[11]), sys: Number(f[12]), ...threadsNs(entry) });
    } catch {
      // gone
    }
  }
  return out;
}

function tree(all: Map<number, Sample>, root: number): Sample[] {
  const res: Sample[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const s = all.get(pid);
    if (s) res.push(s);
    for (const c of all.values()) if (c.ppid === pid) stack.push(c.pid);
  }
  return res;
}

const sessions = Number(args.sessions ?? 20);
const messages = Number(args.messages ?? 100);
const connections = Number(args.connections ?? 0);
const rounds = Number(args.rounds ?? 1);
const profileDir = args['cpu-prof'];
if (profileDir) {
  // The children write their profiles as _smtpd, _smtpq and the delivery user: see impl/src/proc/spawn.ts.
  mkdirSync(profileDir, { recursive: true });
  chmodSync(profileDir, 0o1777);
  process.env.SMTPD_CPU_PROF = profileDir;
}
/** Process titles by pid, for naming the profiles written at exit. */
const titles = new Map<number, string>();
const srv = await oursWith(args.queue ?? 'fs').start();
try {
  const [warmSessions, warmMessages] = (args.warmup ?? '20x100').split('x').map(Number);
  await runLoad({ port: srv.port, rcpt: srv.rcpt, concurrency: warmSessions!, messagesPerSession: warmMessages!, timeoutMs: 10_000 });
  await sleep(1000);
  for (let round = 0; round < rounds; round++) {
    moveToCur(srv.maildirNew);
    const base = countFiles(srv.maildirNew);
    const tracers: ReturnType<typeof spawn>[] = [];
    if (args.strace) {
      // strace -c per process of the server (threads included), for the length of the load: counts only, it slows everything down.
      for (const proc of tree(snapshot(), srv.pid)) {
        const name = proc.name.replace(/^smtpd: /, '').replace(/[^\w]+/g, '-').slice(0, 30);
        tracers.push(spawn('strace', ['-f', '-c', '-S', 'calls', '-o', `${args.strace}.${name}`, '-p', String(proc.pid)], { stdio: 'ignore' }));
      }
      await sleep(1000);
    }
    if (args['strace-detail']) {
      // strace -tt of one process (by title, e.g. "scheduler"), to see what wakes it, message by message.
      const proc = tree(snapshot(), srv.pid).find((p) => p.name === `smtpd: ${args['strace-detail']}`);
      if (proc) tracers.push(spawn('strace', ['-f', '-tt', '-T', '-o', `/tmp/strace-detail.${args['strace-detail']}`, '-p', String(proc.pid)], { stdio: 'ignore' }));
      await sleep(500);
    }
    if (args['perf-stat']) {
      for (const proc of tree(snapshot(), srv.pid)) {
        const name = proc.name.replace(/^smtpd: /, '').replace(/[^\w]+/g, '-').slice(0, 30);
        tracers.push(spawn('perf', ['stat', '-e', 'context-switches,task-clock', '-o', `${args['perf-stat']}.${name}`, '-p', String(proc.pid)], { stdio: 'ignore' }));
      }
      await sleep(500);
    }
    if (args.perf) {
      // perf record of the whole server tree (JavaScript frames have names only if the children run with --perf-basic-prof).
      const pids = tree(snapshot(), srv.pid).map((s) => s.pid).join(',');
      tracers.push(spawn('perf', ['record', '-F', '2000', '-g', '-o', args.perf, '-p', pids], { stdio: 'ignore' }));
      await sleep(500);
    }
    const before = snapshot();
    const planned = connections > 0 ? connections : sessions * messages;
    const t0 = performance.now();
    const r = await runLoad({
      port: srv.port, rcpt: srv.rcpt, timeoutMs: 10_000,
      ...(connections > 0
        ? { mode: 'per-connection' as const, concurrency: sessions, messagesPerSession: 1, connections }
        : { mode: 'sessions' as const, concurrency: sessions, messagesPerSession: messages, connections: 0 }),
    });
    while (countFiles(srv.maildirNew) - base < r.accepted && performance.now() - t0 < 60_000) await sleep(10);
    const wall = performance.now() - t0;
    const after = snapshot();
    for (const s of tree(after, srv.pid)) titles.set(s.pid, s.name.replace(/^smtpd: /, ''));
    for (const tracer of tracers) {
      tracer.kill('SIGINT');
      await new Promise((r) => tracer.once('exit', r));
    }
    const rows = tree(after, srv.pid).map((s) => {
      const b = before.get(s.pid);
      const du = s.user - (b?.user ?? 0);
      const ds = s.sys - (b?.sys ?? 0);
      const ms = (s.ns - (b?.ns ?? 0)) / 1e6 / planned;
      const wait = (s.waitNs - (b?.waitNs ?? 0)) / 1e6 / planned;
      return { name: s.name.replace(/^smtpd: /, '').slice(0, 40), user: (du * 1000) / CLK_TCK / planned, sys: (ds * 1000) / CLK_TCK / planned, ms, wait };
    }).filter((x) => x.ms > 0.001).sort((a, b) => b.ms - a.ms);
    const total = rows.reduce((n, x) => n + x.ms, 0);
    console.log(`N=${sessions} ${connections > 0 ? `1/conn x${connections}` : `x${messages}`}: ${r.accepted}/${planned} in ${(wall / 1000).toFixed(2)} s, ${(r.accepted / (wall / 1000)).toFixed(0)} msg/s, CPU ${total.toFixed(2)} ms/msg`);
    for (const x of rows) {
      console.log(`  ${x.name.padEnd(40)} ${x.ms.toFixed(3)} ms/msg (user ${x.user.toFixed(2)}, sys ${x.sys.toFixed(2)}), waited ${x.wait.toFixed(3)} for a CPU`);
    }
  }
} finally {
  await srv.stop();
  rmSync(srv.dir, { recursive: true, force: true });
}
if (profileDir) await printProfiles(profileDir);

/** Each child's main-thread profile (`CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile`), named by its process title. */
async function printProfiles(dir: string): Promise<void> {
  await sleep(1000); // the children write them as they exit
  for (const file of readdirSync(dir).filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
    const pid = Number(file.split('.')[3]);
    const title = titles.get(pid);
    if (!title) continue; // another run's, or a process that did no work
    console.log(`\n== ${title} (${file})`);
    console.log(summarizeProfile(join(dir, file), { top: 15, windowMs: 3000 }).slice(1).join('\n'));
  }
}
