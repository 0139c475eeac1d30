/**
 * pnpm bench [--quick] [--servers opensmtpd,haraka,ours] [--haraka-nodes 0,2] [--ours-queue fs,log]
 *            [--rounds K] [--pipelining] [--timeout MS] [--keep]
 *
 * Starts every server under test on 127.0.0.1, checks that one message gets
 * through each, warms each up, then measures sessions of M messages at
 * N = 1, 4, 20, 100 and one message per connection. The servers take turns:
 * each load is run on every server before the next load, and the whole is
 * repeated K times (3 by default), so that a machine whose speed drifts
 * (other work, the disk's state) moves every server alike. Prints, per
 * server and load, the round with the median rate (messages/s end to end,
 * the message is in Maildir/new; DATA-end -> 250 latency; CPU per message)
 * with the range over the rounds and the errors of all rounds, then our
 * ratio to each other server: the ratio of the medians, and the range of
 * the ratios measured within each round.
 */
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { percentile, runLoad, type LoadOptions, type LoadResult } from './load-client.ts';
import { countFiles, lastLogLine, LoadFiles, moveToCur, sleep, treeCpuMs } from './proc.ts';
import { haraka } from './servers/haraka.ts';
import { opensmtpd } from './servers/opensmtpd.ts';
import { oursWith } from './servers/ours.ts';
import type { RunningServer, ServerDef } from './servers/types.ts';

const USAGE =
  'usage: pnpm bench [--quick] [--servers opensmtpd,haraka,ours] [--haraka-nodes 0,2] [--ours-queue fs,log] [--sessions 1,4,20,100]\n' +
  '                  [--messages M] [--connections C[/at-once]] [--warmup SxM] [--rounds K] [--pipelining] [--timeout MS] [--keep]';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    servers: { type: 'string' },
    'haraka-nodes': { type: 'string' },
    'ours-queue': { type: 'string' },
    sessions: { type: 'string' },
    messages: { type: 'string' },
    connections: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    pipelining: { type: 'boolean' },
    timeout: { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

interface LoadSpec {
  label: string;
  opts: Pick<LoadOptions, 'mode' | 'concurrency' | 'messagesPerSession' | 'connections'>;
}

// M <= 100: OpenSMTPD refuses a 101st message in a session (452 4.5.3).
const M = Number(args.messages ?? (args.quick ? 20 : 100));
const sessionCounts = (args.sessions ?? (args.quick ? '1,4,20' : '1,4,20,100'))
  .split(',')
  .filter((x) => x !== '')
  .map(Number);
const [connStr, atOnceStr] = (args.connections ?? (args.quick ? '200/10' : '2000/20')).split('/');
const perConn = { connections: Number(connStr), concurrency: Number(atOnceStr ?? 20) };
const loads: LoadSpec[] = [
  ...sessionCounts.map((n) => ({
    label: `N=${n} x${M}`,
    opts: { mode: 'sessions' as const, concurrency: n, messagesPerSession: M, connections: 0 },
  })),
];
if (perConn.connections > 0) {
  loads.push({
    label: `1/conn x${perConn.connections} (${perConn.concurrency} at once)`,
    opts: { mode: 'per-connection', concurrency: perConn.concurrency, messagesPerSession: 1, connections: perConn.connections },
  });
}
const timeoutMs = Number(args.timeout ?? 10_000);
/** How many times every load is run on every server, the servers taking turns. */
const ROUNDS = Number(args.rounds ?? (args.quick ? 1 : 3));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a whole number, 1 or more\n${USAGE}`);
  process.exit(1);
}
const harakaNodes = (args['haraka-nodes'] ?? '0,2').split(',').map(Number);
/** Our server once per queue backend (`-B queue=NAME`); `fs` is the default and is named plain `ours`. */
const oursQueues = (args['ours-queue'] ?? 'fs,log').split(',');
const wanted = (args.servers ?? 'opensmtpd,haraka,ours').split(',');
const defs: ServerDef[] = [];
for (const w of wanted) {
  if (w === 'opensmtpd') defs.push(opensmtpd);
  else if (w === 'haraka') defs.push(...harakaNodes.map((n) => haraka(n)));
  else if (w === 'ours') defs.push(...oursQueues.map((q) => oursWith(q)));
  else {
    console.error(`unknown server "${w}"\n${USAGE}`);
    process.exit(1);
  }
}

/**
 * The warm-up before the first measured load: sessions x messages, 2,000
 * by default. A daemon in production has run for days; V8 compiles a
 * function with its optimizing tier only after it has run many times, and
 * each of our seven processes runs its part once or twice per message. With
 * 400 messages of warm-up, N=1 was measured at 5.8 ms of CPU per message;
 * after 2,000, at 4.4-5.0 ms (bench/src/breakdown.ts --warmup). Every server
 * gets the same warm-up.
 */
const [WARM_SESSIONS, WARM_MESSAGES] = (args.warmup ?? (args.quick ? '4x100' : '20x100')).split('x').map(Number) as [number, number];

/** How long to wait for the maildir to catch up after the last 250, and for progress at all. */
const DRAIN_MAX_MS = 60_000;
const DRAIN_STALL_MS = 10_000;

interface Row {
  server: string;
  load: string;
  /** Which round (1..ROUNDS) measured it. */
  round: number;
  /** 'delivered': counted in Maildir/new; 'accepted': 250s only (the server does not deliver yet). */
  measure: 'delivered' | 'accepted';
  planned: number;
  done: number;
  /** done per second, first connect to last delivery (or last 250 when not delivering). */
  rate: number;
  /** 250s to DATA per second, first connect to last 250. */
  acceptRate: number;
  p50: number;
  p99: number;
  errors: Record<string, number>;
  cpuPerMsg: number;
  clientCpuPerMsg: number;
  wallS: number;
}

const rows: Row[] = [];
const unavailable = new Map<string, string>();
const descriptions: string[] = [];

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function fmtErrors(e: Record<string, number>): string {
  const parts = Object.entries(e)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}x${v}`);
  return parts.length === 0 ? '0' : parts.join(' ');
}

/** Sends one message and tells whether it was accepted and whether it reached the maildir. */
async function probe(srv: RunningServer): Promise<'delivered' | 'accepted'> {
  moveToCur(srv.maildirNew);
  const r = await runLoad({ port: srv.port, rcpt: srv.rcpt, mode: 'sessions', concurrency: 1, messagesPerSession: 1, timeoutMs });
  if (r.accepted !== 1) throw new Error(`probe message not accepted (${fmtErrors(r.errors)})`);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (countFiles(srv.maildirNew) >= 1) return 'delivered';
    await sleep(50);
  }
  return 'accepted';
}

/** Waits until `target` files are in new/ (or progress stalls); returns the time the count was reached and the count. */
async function drain(files: { count(): number }, target: number): Promise<{ atMs: number; count: number }> {
  const start = performance.now();
  let count = files.count();
  let lastChange = start;
  while (count < target) {
    const now = performance.now();
    if (now - start > DRAIN_MAX_MS || now - lastChange > DRAIN_STALL_MS) break;
    await sleep(20);
    const c = files.count();
    if (c !== count) {
      count = c;
      lastChange = performance.now();
    }
  }
  return { atMs: performance.now(), count };
}

async function measure(srv: RunningServer, mode: 'delivered' | 'accepted', spec: LoadSpec, round: number): Promise<Row> {
  moveToCur(srv.maildirNew);
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  const planned = spec.opts.mode === 'sessions' ? spec.opts.concurrency * spec.opts.messagesPerSession : spec.opts.connections;
  const cpu0 = treeCpuMs(srv.pid);
  const tag = `${srv.name} ${spec.label} round ${round} ${Date.now()}`;
  const r: LoadResult = await runLoad({
    port: srv.port,
    rcpt: srv.rcpt,
    tag,
    pipelining: args.pipelining ?? false,
    timeoutMs,
    ...spec.opts,
    onProgress: (accepted) => {
      const now = Date.now();
      if (tty) process.stderr.write(`\r  ${srv.name} ${spec.label}: ${accepted}/${planned} accepted   `);
      else if (now - lastPrint >= 5000) {
        lastPrint = now;
        log(`  ${srv.name} ${spec.label}: ${accepted}/${planned} accepted`);
      }
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  let done = r.accepted;
  let endMs = r.lastAcceptMs;
  let cpu1: number;
  if (mode === 'delivered') {
    // Only this load's files count: a server that fell behind may still be
    // delivering the previous load (they carry another X-Bench-Load).
    const mine = new LoadFiles(srv.maildirNew, tag);
    const d = await drain(mine, r.accepted);
    cpu1 = treeCpuMs(srv.pid);
    done = d.count;
    // The last delivery is the newest ctime of this load's files in new/ (set by
    // the rename into new/), so time spent waiting on stalled sessions does not
    // count as delivery time.
    const last = mine.lastChangeMs();
    if (Number.isFinite(last)) endMs = Math.max(endMs, last - performance.timeOrigin);
  } else {
    cpu1 = treeCpuMs(srv.pid);
  }
  const errors = { ...r.errors };
  if (mode === 'delivered' && done < r.accepted) errors['accepted-not-delivered'] = r.accepted - done;
  const row: Row = {
    server: srv.name,
    load: spec.label,
    round,
    measure: mode,
    planned,
    done,
    rate: done / ((endMs - r.startMs) / 1000),
    acceptRate: r.accepted / ((r.lastAcceptMs - r.startMs) / 1000),
    p50: percentile(r.latenciesMs, 50),
    p99: percentile(r.latenciesMs, 99),
    errors,
    cpuPerMsg: (cpu1 - cpu0) / Math.max(1, done),
    clientCpuPerMsg: r.clientCpuMs / Math.max(1, done),
    wallS: (Math.max(r.endMs, endMs) - r.startMs) / 1000,
  };
  log(
    `  ${srv.name} ${spec.label}${ROUNDS > 1 ? ` (round ${round})` : ''}: ${row.done}/${planned} ${mode}, ${fmt(row.rate)} msg/s, p50 ${fmt(row.p50, 1)} ms, ` +
      `p99 ${fmt(row.p99, 1)} ms, cpu ${fmt(row.cpuPerMsg, 2)} ms/msg (client ${fmt(row.clientCpuPerMsg, 2)}), ` +
      `greeting max ${fmt(Math.max(...r.greetingMs), 0)} ms, errors ${fmtErrors(errors)}, wall ${fmt(row.wallS, 1)} s`,
  );
  return row;
}

const loadNotes: string[] = [];
/** Each server's directory (spool, maildir), removed once every server has run. */
const leftovers: string[] = [];

interface Ready {
  def: ServerDef;
  srv: RunningServer;
  mode: 'delivered' | 'accepted';
}

/** Starts a server, checks it with one message, and warms it up; undefined (and a note why) if it cannot run. */
async function startServer(def: ServerDef): Promise<Ready | undefined> {
  log(`${def.name}: starting`);
  let srv: RunningServer | undefined;
  try {
    srv = await def.start();
    descriptions.push(`${srv.name}: ${srv.description}`);
    let mode: 'delivered' | 'accepted';
    try {
      mode = await probe(srv);
    } catch (e) {
      throw new Error(`${(e as Error).message}; log: ${lastLogLine(srv.logFile)}`);
    }
    if (mode === 'accepted' && !isOurs(def.name)) throw new Error('accepted a message but did not deliver it in 5 s');
    log(`${def.name}: up on 127.0.0.1:${srv.port}, pid ${srv.pid}, measuring ${mode} messages; warming up`);
    // Warm-up (JIT, caches), not measured, so that a server running
    // JavaScript is measured with its hot code compiled, as it runs in
    // production, not while V8 is still optimizing it.
    const warm = await runLoad({ port: srv.port, rcpt: srv.rcpt, concurrency: WARM_SESSIONS, messagesPerSession: WARM_MESSAGES, timeoutMs });
    const newDir = srv.maildirNew;
    if (mode === 'delivered') await drain({ count: () => countFiles(newDir) }, 1 + warm.accepted);
    return { def, srv, mode };
  } catch (e) {
    const reason = (e as Error).message;
    unavailable.set(def.name, reason);
    log(`${def.name}: not available (${reason})`);
    if (srv) await stopServer(def, srv);
    return undefined;
  }
}

async function stopServer(def: ServerDef, srv: RunningServer): Promise<void> {
  await srv.stop();
  // Removed at the very end, not now: deleting thousands of files here
  // would slow the other servers' file creation (see moveToCur).
  if (!args.keep) leftovers.push(srv.dir);
  else log(`${def.name}: kept ${srv.dir}`);
}

/**
 * Every load on every server, round after round. Within a round the
 * servers take turns on each load, starting one further along each
 * round, so that no server is always the one measured right after a
 * heavy load (whose deletes and writebacks the next one pays for).
 */
async function runRounds(ready: Ready[]): Promise<void> {
  for (let round = 1; round <= ROUNDS; round++) {
    const la = loadavg()[0]!.toFixed(2);
    loadNotes.push(`round ${round} ${la}`);
    log(`round ${round} of ${ROUNDS} (1-min load average ${la}: anything else running skews the numbers)`);
    const order = ready.map((_, i) => ready[(i + round - 1) % ready.length]!);
    for (const spec of loads) {
      for (const { srv, mode } of order) {
        rows.push(await measure(srv, mode, spec, round));
        await sleep(300);
      }
    }
  }
}

/** The median of a list of numbers (the lower middle one for an even count). */
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

/** The rows of one server and load, one per round. */
function roundsOf(server: string, load: string): Row[] {
  return rows.filter((r) => r.server === server && r.load === load);
}

/** The round with the median rate: its latency and CPU are shown, so that they belong to one run. */
function medianRow(server: string, load: string): Row | undefined {
  const all = roundsOf(server, load).sort((a, b) => a.rate - b.rate);
  return all[Math.floor((all.length - 1) / 2)];
}

function range(xs: number[], digits: number): string {
  const finite = xs.filter(Number.isFinite);
  if (finite.length < 2) return '';
  return `${fmt(Math.min(...finite), digits)}-${fmt(Math.max(...finite), digits)}`;
}

/** Errors of all rounds together, by kind. */
function allErrors(server: string, load: string): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const r of roundsOf(server, load)) for (const [k, v] of Object.entries(r.errors)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

function printTables(): void {
  const out: string[] = [];
  out.push('');
  out.push(
    `SMTP benchmark, 127.0.0.1, ${loads.length} loads per server, 2 KiB messages, ` +
      `pipelining ${args.pipelining ? 'on (where advertised)' : 'off'}, timeout ${timeoutMs / 1000} s`,
  );
  out.push('msg/s = messages in Maildir/new per second, first connect to last delivery ("accepted*" = 250s only: server does not deliver yet)');
  out.push('250/s = 250 replies to DATA per second, first connect to last 250 (OpenSMTPD answers before delivering)');
  out.push('latency = final "." sent -> 250 read; CPU = server process tree (incl. reaped children) per message');
  out.push(`1-min load average when each round began (2 cores): ${loadNotes.join(', ')}`);
  if (ROUNDS > 1) {
    out.push(`${ROUNDS} rounds, the servers taking turns on each load: each row is the round with the median msg/s,`);
    out.push('"range" the lowest and highest msg/s of all rounds, "errors" those of all rounds together');
  }
  out.push('');
  const servers = [...new Set(rows.map((r) => r.server))];
  const header = ['server', 'load', 'done/planned', 'msg/s', 'range', '250/s', 'p50 ms', 'p99 ms', 'srv CPU ms/msg', 'errors'];
  const table: string[][] = [header];
  for (const server of servers) {
    for (const spec of loads) {
      const r = medianRow(server, spec.label);
      if (!r) continue;
      table.push([
        r.server,
        r.load,
        `${r.done}/${r.planned}${r.measure === 'accepted' ? ' accepted*' : ''}`,
        `${fmt(r.rate)}${r.measure === 'accepted' ? '*' : ''}`,
        range(roundsOf(server, spec.label).map((x) => x.rate), 0),
        fmt(r.acceptRate),
        fmt(r.p50, 1),
        fmt(r.p99, 1),
        fmt(r.cpuPerMsg, 2),
        fmtErrors(allErrors(server, spec.label)),
      ]);
    }
  }
  out.push(...formatTable(table));
  for (const [name, reason] of unavailable) out.push(`${name}: not available (${reason})`);

  const others = servers.filter((s) => !isOurs(s));
  for (const me of others.length > 0 ? servers.filter(isOurs) : []) {
    out.push('');
    const oursRows = rows.filter((r) => r.server === me);
    const acceptedOnly = oursRows.some((r) => r.measure === 'accepted');
    out.push(
      acceptedOnly
        ? `${me} / other, 250/s (* ours does not deliver yet, so 250s are compared with 250s):`
        : `${me} / other, msg/s end to end${ROUNDS > 1 ? ': ratio of the medians (lowest-highest ratio within one round)' : ''}:`,
    );
    const rt: string[][] = [['load', ...others.map((o) => `x${o}`)]];
    const rateOf = (r: Row) => (acceptedOnly ? r.acceptRate : r.rate);
    for (const spec of loads) {
      const mine = roundsOf(me, spec.label);
      rt.push([
        spec.label,
        ...others.map((o) => {
          const theirs = roundsOf(o, spec.label);
          if (mine.length === 0) return unavailable.has(me) ? `n/a (${me} not available)` : 'n/a';
          if (theirs.length === 0) return 'n/a';
          const b = median(theirs.map(rateOf));
          if (!(b > 0)) return 'n/a';
          const perRound = mine.flatMap((m) => {
            const t = theirs.find((x) => x.round === m.round);
            return t && rateOf(t) > 0 ? [rateOf(m) / rateOf(t)] : [];
          });
          const spread = range(perRound, 2);
          return `${(median(mine.map(rateOf)) / b).toFixed(2)}${acceptedOnly ? '*' : ''}${spread ? ` (${spread})` : ''}`;
        }),
      ]);
    }
    out.push(...formatTable(rt));
  }
  out.push('');
  out.push('servers:');
  for (const d of descriptions) out.push(`  ${d}`);
  console.log(out.join('\n'));
}

/** Our server, with any queue backend (`ours`, `ours/log`). */
function isOurs(name: string): boolean {
  return name === 'ours' || name.startsWith('ours/');
}

function formatTable(t: string[][]): string[] {
  const widths = t[0]!.map((_, i) => Math.max(...t.map((row) => (row[i] ?? '').length)));
  const numeric = t[0]!.length === 10; // the main table: right-align its figures
  const line = (row: string[]): string =>
    `| ${row.map((c, i) => (numeric && i >= 2 && i <= 8 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [line(t[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...t.slice(1).map(line)];
}

const t0 = Date.now();
const ready: Ready[] = [];
try {
  for (const def of defs) {
    const r = await startServer(def);
    if (r) ready.push(r);
  }
  await runRounds(ready);
} finally {
  for (const { def, srv } of ready) await stopServer(def, srv);
}
for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
printTables();
log(`bench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
