/**
 * node --import tsx bench/src/soak.ts [--minutes 30] [--rate 100] [--queue fs|log] [--short 8] [--long 3]
 *        [--ttl 5] [--drain SECONDS] [--sample 5] [--out FILE.jsonl] [--keep]
 *
 * A soak: the daemon, started as root (so that the _smtpd/_smtpq split and
 * the per-user delivery agents are real), under a steady, moderate load of
 * mixed sessions for a long time, watched for what grows and never comes
 * back down. Not a test: it takes as long as it is told to.
 *
 * The load, paced to `rate` messages a second in all:
 *   - `long` clients in sessions of 100 messages each, to nobody@localhost
 *   - `short` clients, each session one of: one message and QUIT; three
 *     recipients; a DATA cut off in the middle; a message and no QUIT; a
 *     session cut after RCPT; ten MAIL/RCPT/RSET before the message; an
 *     unknown recipient (550) beside a good one; a message to an mda that
 *     succeeds (news), fails half the time for now (man), fails for good
 *     (lp: a bounce) or fails for now every time (games: kept in the
 *     scheduler's retry state, a delay warning, and a bounce at the queue
 *     ttl); a null-sender message that fails for good (no bounce);
 *   - a message to uucp every 75 s and 20 to backup every 3 minutes, so
 *     that their agents close (a minute after the last delivery) and are
 *     started again, over and over.
 * Delivered mail is counted and removed as it arrives (a user reading
 * mail), bounces and warnings come to mail@localhost, the sender.
 *
 * Every `sample` seconds it reads, for each process of the daemon's tree:
 * RSS, open descriptors, threads from /proc; V8 heap and active handles
 * (timers among them) from soak-probe.mjs, which NODE_OPTIONS loads into
 * every Node process of the daemon; and the spool: files by kind for the
 * fs queue, segments and their sizes for the log queue. At the start (after
 * a warm-up), the middle and the end of the load, and after the drain (the
 * queue ttl and the agents' idle minute passed), it asks every process for
 * a full GC and prints a table. After the drain it compares what was
 * delivered with what was accepted, per user.
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { buildMessage, Conn, SmtpError } from './load-client.ts';
import { freePort, sleep, spawnServer, waitForGreeting } from './proc.ts';
import { makeTempDir, privateNamespaceArgs } from './servers/common.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string' },
    rate: { type: 'string' },
    queue: { type: 'string' },
    short: { type: 'string' },
    long: { type: 'string' },
    ttl: { type: 'string' },
    drain: { type: 'string' },
    sample: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean' },
  },
  strict: true,
});

const minutes = Number(args.minutes ?? 30);
const rate = Number(args.rate ?? 100);
const queue = args.queue ?? 'fs';
const shortClients = Number(args.short ?? 8);
const longClients = Number(args.long ?? 3);
const ttlMinutes = Number(args.ttl ?? 5);
const drainSeconds = Number(args.drain ?? ttlMinutes * 60 + 100);
const sampleMs = Number(args.sample ?? 5) * 1000;
const probeMs = 2000;
const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
const outFile = args.out ?? `/tmp/soak-${queue}-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;

if (process.getuid?.() !== 0) {
  console.error('soak: run as root, so that the daemon splits into its users and delivery agents run as the recipients');
  process.exit(2);
}

// ---------------------------------------------------------------- the daemon


const dir = makeTempDir(`soak-${queue}`);
const spool = join(dir, 'spool');
const mailRoot = join(dir, 'mail');
const mdaLog = join(dir, 'mdalog');
const probeDir = join(dir, 'probe');
mkdirSync(spool, { mode: 0o711 });
for (const d of [mailRoot, mdaLog, probeDir]) {
  mkdirSync(d);
  chmodSync(d, 0o1777);
}
const mda = join(dir, 'mda.sh');
writeFileSync(mda, [
  '#!/bin/sh',
  '# Reads the message, then does what the recipient ($1) stands for.',
  'cat >/dev/null || exit 75',
  'case "$1" in',
  `  news) echo x >>${mdaLog}/news ;;`,
  `  man) [ $(( $$ % 2 )) -eq 0 ] && exit 75; echo x >>${mdaLog}/man ;;`,
  '  lp) echo "no printer" >&2; exit 1 ;;',
  '  games) exit 75 ;;',
  'esac',
  'exit 0',
  '',
].join('\n'), { mode: 0o755 });
const port = await freePort();
const conf = join(dir, 'smtpd.conf');
writeFileSync(conf, [
  `queue ttl ${ttlMinutes}m`,
  `bounce warn-interval ${Math.max(1, Math.floor(ttlMinutes / 2))}m`,
  `listen on 127.0.0.1 port ${port}`,
  `action "md" maildir "${mailRoot}/%{user.username}"`,
  `action "mda" mda "${mda} %{rcpt.user}"`,
  'match from any for domain "mda.localhost" action "mda"',
  'match from any for domain "localhost" action "md"',
  '',
].join('\n'));
const logFile = join(dir, 'smtpd.log');
const cmd = `node impl/bin/smtpd.mjs -d -f ${conf} --spool ${spool}${queue === 'fs' ? '' : ` -B queue=${queue}`}`;
const server = spawnServer('unshare', privateNamespaceArgs(dir, cmd), {
  cwd: repoRoot,
  logFile,
  env: { ...process.env, NODE_OPTIONS: `--import ${pathToFileURL(join(repoRoot, 'bench', 'src', 'soak-probe.mjs')).href}`, SOAK_PROBE_DIR: probeDir, SOAK_PROBE_MS: String(probeMs) },
});
await waitForGreeting(port, server, 30_000, logFile);
const rootPid = server.pid;
console.log(`soak: queue=${queue} port=${port} dir=${dir} pid=${rootPid} rate=${rate}/s for ${minutes} min, ttl ${ttlMinutes} min; samples to ${outFile}`);

// ---------------------------------------------------------------- watching

interface Proc {
  pid: number;
  ppid: number;
  title: string;
  user: number;
  rssKb: number;
  fds: number;
  threads: number;
  probe?: { at: number; gcSeen: number; memory: NodeJS.MemoryUsage; resources: Record<string, number> };
}

function readProc(pid: number): Omit<Proc, 'ppid'> & { ppid: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    let fds = -1;
    try {
      fds = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // gone meanwhile
    }
    return {
      pid,
      ppid: Number(field('PPid')),
      title: cmdline.includes('esbuild') ? 'esbuild' : cmdline.startsWith('smtpd: ') ? cmdline.slice(7) : cmdline.slice(0, 40),
      user: Number(field('Uid').split(/\s+/)[0]),
      rssKb: Number.parseInt(field('VmRSS'), 10) || 0,
      fds,
      threads: Number(field('Threads')),
    };
  } catch {
    return undefined;
  }
}

/** The daemon's process tree, each with what its probe last wrote. */
function processTree(): Proc[] {
  const ppids = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = ppids.get(ppid) ?? [];
      list.push(Number(entry));
      ppids.set(ppid, list);
    } catch {
      // gone
    }
  }
  const out: Proc[] = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const p = readProc(pid);
    if (!p) continue;
    try {
      (p as Proc).probe = JSON.parse(readFileSync(join(probeDir, `${pid}.json`), 'utf8'));
    } catch {
      // no probe (not Node) or not written yet
    }
    out.push(p);
    stack.push(...(ppids.get(pid) ?? []));
  }
  return out;
}

interface SpoolStats { files: Record<string, number>; bytes: Record<string, number>; segments?: number[] }

/** Files and bytes under the spool, by kind: queue/ messages and envelopes (fs), log segments (log), and the rest by top directory. */
function spoolStats(): SpoolStats {
  const files: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  const segments: number[] = [];
  const add = (kind: string, size: number): void => {
    files[kind] = (files[kind] ?? 0) + 1;
    bytes[kind] = (bytes[kind] ?? 0) + size;
  };
  const walk = (path: string, top: string): void => {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(path, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        walk(p, top === '' ? name : top === 'log' && name === 'incoming' ? 'log/incoming' : top);
      } else if (top === 'queue') {
        add(/^[0-9a-f]{16}$/.test(name) ? 'envelope' : /^[0-9a-f]{8}$/.test(name) ? 'message' : 'queue/other', st.size);
      } else if (top === 'log' && /^[0-9a-f]{8}$/.test(name)) {
        add('segment', st.size);
        segments.push(st.size);
      } else {
        add(top === '' ? name : top, st.size);
      }
    }
  };
  walk(spool, '');
  return { files, bytes, ...(queue === 'log' && { segments }) };
}

// ---------------------------------------------------------------- the mailboxes

const delivered: Record<string, number> = {};
let bouncesIn = 0;
let warningsIn = 0;
let leftInTmp = 0;

/** Counts and removes what arrived, as users reading their mail would; reads the subject of mail@'s (bounces and warnings). */
function collectMail(): void {
  let users: string[];
  try {
    users = readdirSync(mailRoot);
  } catch {
    return;
  }
  leftInTmp = 0;
  for (const user of users) {
    const newDir = join(mailRoot, user, 'new');
    let names: string[] = [];
    try {
      names = readdirSync(newDir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(newDir, name);
      if (user === 'mail') {
        const head = readFileSync(path, 'latin1').slice(0, 4096);
        if (/^Subject: .*Delay/im.test(head)) warningsIn++;
        else bouncesIn++;
      }
      delivered[user] = (delivered[user] ?? 0) + 1;
      unlinkSync(path);
    }
    try {
      leftInTmp += readdirSync(join(mailRoot, user, 'tmp')).length;
    } catch {
      // not made yet
    }
  }
}

function mdaDelivered(user: string): number {
  try {
    return statSync(join(mdaLog, user)).size / 2;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- the load

/** What the load expects to see delivered, per user, and what it saw go wrong. */
const expected: Record<string, number> = {};
let expectedBounces = 0;
let expectedWarnings = 0;
let accepted = 0;
let messages = 0;
const replies: Record<string, number> = {};
const failures: Record<string, number> = {};
let stopping = false;

function count(table: Record<string, number>, key: string, n = 1): void {
  table[key] = (table[key] ?? 0) + n;
}

/** A global pacer: each message waits for its slot, `rate` slots a second, shared by all clients. */
let nextSlot = performance.now();
async function slot(): Promise<void> {
  const now = performance.now();
  const at = Math.max(now, nextSlot);
  nextSlot = at + 1000 / rate;
  if (at > now) await sleep(at - now);
}

const BODY = { from: 'mail@localhost', rcpt: 'soak@localhost', messageBytes: 2048 };

class Session {
  readonly c = new Conn(30_000);
  async open(): Promise<void> {
    await this.c.connect('127.0.0.1', port);
    await this.expect('greeting', '', 220);
    await this.expect('EHLO', 'EHLO soak.localhost', 250);
  }
  /** Sends a command, reads its reply; counts the reply under the stage, and throws unless it is `want`. */
  async expect(stage: string, line: string, want: number): Promise<number> {
    if (line) this.c.write(`${line}\r\n`);
    const r = await this.c.read(stage);
    count(replies, `${stage}:${r.code}`);
    if (r.code !== want) throw new SmtpError(`reply:${stage}:${r.code}`);
    return r.code;
  }
  async send(stage: string, line: string): Promise<number> {
    this.c.write(`${line}\r\n`);
    const r = await this.c.read(stage);
    count(replies, `${stage}:${r.code}`);
    return r.code;
  }
  /** One whole message: MAIL, each RCPT (a refused one allowed when `mayRefuse` says so), DATA, content; the recipients accepted. */
  async message(from: string, rcpts: string[], mayRefuse: (rcpt: string) => boolean = () => false): Promise<string[] | undefined> {
    await slot();
    messages++;
    await this.expect('MAIL', `MAIL FROM:<${from}>`, 250);
    const ok: string[] = [];
    for (const r of rcpts) {
      const code = await this.send('RCPT', `RCPT TO:<${r}>`);
      if (code === 250) ok.push(r);
      else if (!mayRefuse(r)) throw new SmtpError(`reply:RCPT:${code}`);
    }
    await this.expect('DATA', 'DATA', 354);
    this.c.write(`${buildMessage(BODY, process.pid, messages)}.\r\n`);
    await this.expect('DOT', '', 250);
    accepted++;
    return ok;
  }
  async quit(): Promise<void> {
    this.c.write('QUIT\r\n');
    try {
      await this.c.read('QUIT');
    } catch {
      // a close right after 221 is fine
    }
    this.c.close();
  }
}

function expectLocal(rcpts: string[]): void {
  for (const r of rcpts) count(expected, r.replace(/@.*/, ''));
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

const SHORT_KINDS: Array<[string, number, (s: Session) => Promise<void>]> = [
  ['single', 3, async (s) => {
    const rcpt = `${pick(['daemon', 'bin', 'sys'])}@localhost`;
    expectLocal((await s.message('mail@localhost', [rcpt]))!);
    await s.quit();
  }],
  ['three-rcpts', 1, async (s) => {
    expectLocal((await s.message('mail@localhost', ['nobody@localhost', 'daemon@localhost', 'sys@localhost']))!);
    await s.quit();
  }],
  ['abort-in-data', 1, async (s) => {
    await slot();
    await s.expect('MAIL', 'MAIL FROM:<mail@localhost>', 250);
    await s.expect('RCPT', 'RCPT TO:<bin@localhost>', 250);
    await s.expect('DATA', 'DATA', 354);
    const text = buildMessage(BODY, process.pid, 0);
    s.c.write(text.slice(0, text.length / 2));
    await sleep(20);
    s.c.close();
  }],
  ['no-quit', 1, async (s) => {
    expectLocal((await s.message('mail@localhost', ['daemon@localhost']))!);
    s.c.close();
  }],
  ['cut-after-rcpt', 1, async (s) => {
    await s.expect('MAIL', 'MAIL FROM:<mail@localhost>', 250);
    await s.expect('RCPT', 'RCPT TO:<sys@localhost>', 250);
    s.c.close();
  }],
  ['rset-heavy', 1, async (s) => {
    for (let i = 0; i < 10; i++) {
      await s.expect('MAIL', 'MAIL FROM:<mail@localhost>', 250);
      await s.expect('RCPT', 'RCPT TO:<bin@localhost>', 250);
      await s.expect('RSET', 'RSET', 250);
    }
    expectLocal((await s.message('mail@localhost', ['bin@localhost']))!);
    await s.quit();
  }],
  ['unknown-user', 1, async (s) => {
    const unknown = `nosuch${Math.floor(Math.random() * 1e6)}@localhost`;
    const ok = (await s.message('mail@localhost', [unknown, 'sys@localhost'], (r) => r === unknown))!;
    if (ok.includes(unknown)) count(failures, 'unknown user accepted');
    expectLocal(ok);
    await s.quit();
  }],
  ['mda', 1.2, async (s) => {
    const r = Math.random();
    const user = r < 0.4 ? 'news' : r < 0.8 ? 'man' : r < 0.9 ? 'lp' : 'games';
    const nullSender = user === 'lp' && Math.random() < 0.25;
    await s.message(nullSender ? '' : 'mail@localhost', [`${user}@mda.localhost`]);
    if (user === 'news' || user === 'man') count(expected, `mda:${user}`);
    if (user === 'lp' && !nullSender) expectedBounces++;
    if (user === 'games') {
      expectedBounces++;
      expectedWarnings++;
    }
    await s.quit();
  }],
];
const SHORT_TOTAL = SHORT_KINDS.reduce((n, k) => n + k[1], 0);

async function client(kind: () => [string, (s: Session) => Promise<void>]): Promise<void> {
  while (!stopping) {
    const [name, run] = kind();
    const s = new Session();
    try {
      await s.open();
      await run(s);
      count(replies, `session:${name}`);
    } catch (e) {
      count(failures, `${name}: ${e instanceof SmtpError ? e.kind : (e as Error).message}`);
      s.c.close();
      await sleep(200);
    }
  }
}

function shortKind(): [string, (s: Session) => Promise<void>] {
  let r = Math.random() * SHORT_TOTAL;
  for (const [name, w, run] of SHORT_KINDS) {
    if ((r -= w) < 0) return [name, run];
  }
  return [SHORT_KINDS[0]![0], SHORT_KINDS[0]![2]];
}

const longSession = async (s: Session): Promise<void> => {
  for (let i = 0; i < 100 && !stopping; i++) {
    expectLocal((await s.message('mail@localhost', i % 10 === 0 ? ['nobody@localhost', 'daemon@localhost'] : ['nobody@localhost']))!);
  }
  await s.quit();
};

/** Every `everyMs`, one session of `n` messages to `user`: agents that go idle and come back. */
async function periodic(user: string, n: number, everyMs: number): Promise<void> {
  while (!stopping) {
    const s = new Session();
    try {
      await s.open();
      for (let i = 0; i < n; i++) expectLocal((await s.message('mail@localhost', [`${user}@localhost`]))!);
      await s.quit();
    } catch (e) {
      count(failures, `periodic ${user}: ${e instanceof SmtpError ? e.kind : (e as Error).message}`);
      s.c.close();
    }
    const until = Date.now() + everyMs;
    while (!stopping && Date.now() < until) await sleep(500);
  }
}

// ---------------------------------------------------------------- sampling and tables

interface Sample { t: number; phase: string; procs: Proc[]; spool: SpoolStats; accepted: number; delivered: number; agentsSeen: number }

const t0 = Date.now();
const samples: Sample[] = [];
const agentPids = new Set<number>();
let phase = 'warmup';

function takeSample(): Sample {
  collectMail();
  const procs = processTree();
  for (const p of procs) if (p.title.startsWith('delivery agent')) agentPids.add(p.pid);
  const s: Sample = {
    t: (Date.now() - t0) / 1000,
    phase,
    procs,
    spool: spoolStats(),
    accepted,
    delivered: Object.values(delivered).reduce((n, x) => n + x, 0),
    agentsSeen: agentPids.size,
  };
  samples.push(s);
  appendFileSync(outFile, `${JSON.stringify(s)}\n`);
  return s;
}

/** Asks every probe for a full GC, waits until each has answered, and samples. */
async function gcSample(): Promise<Sample> {
  const gcFile = join(probeDir, 'gc');
  writeFileSync(gcFile, String(Date.now()));
  chmodSync(gcFile, 0o644);
  const stamp = statSync(gcFile).mtimeMs;
  const deadline = Date.now() + 4 * probeMs + 2000;
  for (;;) {
    await sleep(500);
    const s = takeSample();
    const nodes = s.procs.filter((p) => p.title !== 'esbuild' && !p.title.startsWith('/bin/sh'));
    if (nodes.every((p) => p.probe && p.probe.gcSeen >= stamp) || Date.now() > deadline) return s;
  }
}

const MB = (bytes: number): string => (bytes / 1048576).toFixed(1);

function printTable(label: string, s: Sample): void {
  console.log(`\n== ${label} (t=${s.t.toFixed(0)} s, accepted ${s.accepted}, delivered ${s.delivered}, agents started so far ${s.agentsSeen})`);
  console.log(`${'process'.padEnd(30)} ${'pid'.padStart(7)} ${'RSS MB'.padStart(7)} ${'heapUsed'.padStart(8)} ${'heapTot'.padStart(7)} ${'extern'.padStart(7)} ${'fds'.padStart(4)} ${'thr'.padStart(4)} ${'timers'.padStart(6)} handles`);
  const esbuild = s.procs.filter((p) => p.title === 'esbuild');
  for (const p of s.procs.filter((p) => p.title !== 'esbuild').sort((a, b) => a.pid - b.pid)) {
    const m = p.probe?.memory;
    const res = p.probe?.resources ?? {};
    const others = Object.entries(res).filter(([k]) => k !== 'Timeout').map(([k, v]) => `${k}:${v}`).join(' ');
    console.log(`${p.title.slice(0, 30).padEnd(30)} ${String(p.pid).padStart(7)} ${MB(p.rssKb * 1024).padStart(7)} ${(m ? MB(m.heapUsed) : '-').padStart(8)} ${(m ? MB(m.heapTotal) : '-').padStart(7)} ${(m ? MB(m.external) : '-').padStart(7)} ${String(p.fds).padStart(4)} ${String(p.threads).padStart(4)} ${String(res.Timeout ?? 0).padStart(6)} ${others}`);
  }
  console.log(`esbuild helpers: ${esbuild.length}, RSS ${MB(esbuild.reduce((n, p) => n + p.rssKb * 1024, 0))} MB in all`);
  const sp = s.spool;
  console.log(`spool: ${Object.entries(sp.files).map(([k, v]) => `${k} ${v} (${MB(sp.bytes[k] ?? 0)} MB)`).join(', ') || 'empty'}`);
  if (sp.segments) console.log(`log segments: ${sp.segments.length}: ${sp.segments.map((b) => MB(b)).join(' ')} MB`);
}

function statusLine(s: Sample): void {
  const byTitle = (t: string): Proc | undefined => s.procs.find((p) => p.title === t);
  const agents = s.procs.filter((p) => p.title.startsWith('delivery agent'));
  const rss = s.procs.reduce((n, p) => n + p.rssKb, 0) / 1024;
  const fd = (t: string): string => String(byTitle(t)?.fds ?? '-');
  const heap = (t: string): string => MB(byTitle(t)?.probe?.memory.heapUsed ?? 0);
  const sp = s.spool;
  const spoolText = queue === 'log'
    ? `segments ${sp.segments?.length ?? 0} (${MB((sp.segments ?? []).reduce((n, b) => n + b, 0))} MB)`
    : `env ${sp.files.envelope ?? 0} msg ${sp.files.message ?? 0}`;
  console.log(`t=${s.t.toFixed(0).padStart(5)} ${s.phase.padEnd(6)} acc ${s.accepted} dlv ${s.delivered} mda ${mdaDelivered('news') + mdaDelivered('man')} bnc ${bouncesIn}/${warningsIn}w | ${spoolText} inc ${(sp.files.incoming ?? 0) + (sp.files['log/incoming'] ?? 0)} tmp ${sp.files.temporary ?? 0} | agents ${agents.length} (${s.agentsSeen} seen) procs ${s.procs.length} | RSS ${rss.toFixed(0)} MB | fds parent ${fd('parent')} disp ${fd('dispatcher')} queue ${fd('queue')} smtp ${fd('smtp')} | heap MB smtp ${heap('smtp')} queue ${heap('queue')} sched ${heap('scheduler')} disp ${heap('dispatcher')}`);
}

// ---------------------------------------------------------------- the run

let ticker: NodeJS.Timeout | undefined;
let lastStatus = 0;
const startTicker = (): void => {
  ticker = setInterval(() => {
    const s = takeSample();
    if (s.t - lastStatus >= 60) {
      lastStatus = s.t;
      statusLine(s);
    }
  }, sampleMs);
};

try {
  // Warm-up: V8 optimises the hot paths after a few thousand messages; the
  // start figures are taken after it, so that what grows later is growth.
  startTicker();
  const clients: Promise<void>[] = [];
  for (let i = 0; i < longClients; i++) clients.push(client(() => ['long', longSession]));
  for (let i = 0; i < shortClients; i++) clients.push(client(shortKind));
  clients.push(periodic('uucp', 1, 75_000), periodic('backup', 20, 180_000));
  await sleep(60_000);
  phase = 'load';
  const start = await gcSample();
  printTable('start (after 1 min of warm-up, full GC)', start);
  const loadMs = minutes * 60_000;
  await sleep(loadMs / 2);
  const middle = await gcSample();
  printTable('middle of the load (full GC)', middle);
  await sleep(loadMs / 2);
  stopping = true;
  await Promise.all(clients);
  phase = 'drain';
  const endLoad = await gcSample();
  printTable('end of the load (full GC)', endLoad);
  const drainUntil = Date.now() + drainSeconds * 1000;
  while (Date.now() < drainUntil) await sleep(1000);
  clearInterval(ticker);
  const final = await gcSample();
  printTable(`after ${drainSeconds} s of drain (full GC)`, final);

  // What came out against what went in.
  collectMail();
  console.log(`\nmessages tried ${messages}, accepted ${accepted} over ${((Date.now() - t0) / 60000).toFixed(1)} min`);
  console.log(`replies: ${Object.entries(replies).sort().map(([k, v]) => `${k}=${v}`).join(' ')}`);
  console.log(`client-side failures: ${JSON.stringify(failures)}`);
  const rows: string[] = [];
  for (const user of new Set([...Object.keys(expected), ...Object.keys(delivered)])) {
    if (user.startsWith('mda:') || user === 'mail') continue;
    rows.push(`${user} ${delivered[user] ?? 0}/${expected[user] ?? 0}`);
  }
  for (const user of ['news', 'man']) rows.push(`mda:${user} ${mdaDelivered(user)}/${expected[`mda:${user}`] ?? 0}`);
  console.log(`delivered/expected: ${rows.join(', ')}`);
  console.log(`bounces ${bouncesIn}/${expectedBounces} (games' still within the ttl come later), delay warnings ${warningsIn}/${expectedWarnings}; files left in a Maildir tmp/: ${leftInTmp}`);
  const growth = (title: string, get: (p: Proc) => number): string => {
    const a = start.procs.find((p) => p.title === title);
    const b = final.procs.find((p) => p.title === title);
    return a && b ? `${(get(b) - get(a)) >= 0 ? '+' : ''}${(get(b) - get(a)).toFixed(1)}` : 'n/a';
  };
  console.log('\nstart -> after drain, per process: RSS MB, heapUsed MB, fds');
  for (const title of ['parent', 'crypto', 'control', 'lookup', 'scheduler', 'dispatcher', 'queue', 'smtp']) {
    console.log(`  ${title.padEnd(12)} RSS ${growth(title, (p) => p.rssKb / 1024)}  heap ${growth(title, (p) => (p.probe?.memory.heapUsed ?? 0) / 1048576)}  fds ${growth(title, (p) => p.fds)}`);
  }
} finally {
  clearInterval(ticker);
  stopping = true;
  await server.stop(10_000);
  if (existsSync(join(dir, 'spool')) && !args.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}
