/**
 * Process plumbing shared by the server launchers: spawning a server in its
 * own process group, stopping the whole group, measuring the CPU time of a
 * process tree, finding a free port, waiting for an SMTP greeting, and
 * counting a maildir.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { LOAD_TAG_HEADER } from './load-client.ts';

/** Clock ticks per second for /proc/<pid>/stat times. */
export const CLK_TCK: number = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Process groups we started and have not yet seen stopped; killed on exit no matter what. */
const liveGroups = new Set<number>();

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    liveGroups.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping servers\n`);
      killAll();
      process.exit(130);
    });
  }
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) when the process exits. */
  exited: Promise<string>;
  hasExited(): boolean;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `cmd args` detached (its own process group), stdout and stderr
 * appended to `logFile` (not piped through us: the benchmark client should
 * not pay for the server's logging).
 */
export function spawnServer(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string },
): Spawned {
  installExitHook();
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  liveGroups.add(pid);
  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve(signal ?? String(code));
    });
    child.on('error', (e) => {
      done = true;
      resolve(`spawn error: ${e.message}`);
    });
  });
  const groupAlive = (): boolean => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    child,
    pid,
    exited,
    hasExited: () => done,
    async stop(graceMs = 5000) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // group already gone
      }
      const deadline = Date.now() + graceMs;
      while (groupAlive() && Date.now() < deadline) await sleep(50);
      if (groupAlive()) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        const hard = Date.now() + 2000;
        while (groupAlive() && Date.now() < hard) await sleep(50);
      }
      liveGroups.delete(pid);
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface StatLine {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field k is rest[k - 3].
  const num = (field: number): number => Number(rest[field - 3] ?? 0);
  return { pid, ppid: num(4), ticks: num(14) + num(15) + num(16) + num(17) };
}

/**
 * CPU time in milliseconds used so far by `root` and all its live descendants,
 * plus whatever their already-reaped children used (cutime/cstime): short-lived
 * helpers such as OpenSMTPD's mail.maildir are counted once their parent has
 * waited for them.
 */
export function treeCpuMs(root: number): number {
  const all: StatLine[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) all.push(st);
  }
  const children = new Map<number, StatLine[]>();
  for (const st of all) {
    const list = children.get(st.ppid);
    if (list) list.push(st);
    else children.set(st.ppid, [st]);
  }
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) return NaN;
  let ticks = 0;
  const stack = [rootStat];
  while (stack.length > 0) {
    const st = stack.pop()!;
    ticks += st.ticks;
    stack.push(...(children.get(st.pid) ?? []));
  }
  return (ticks * 1000) / CLK_TCK;
}

/** A TCP port on 127.0.0.1 that nothing is listening on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Connects once; resolves with the first reply line, or rejects (refused, timeout, closed). */
export function probeGreeting(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = new Socket();
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no greeting'));
    }, timeoutMs);
    const finish = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error('closed before greeting')));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\n');
      if (i >= 0) {
        sock.write('QUIT\r\n');
        finish(null, buf.slice(0, i).trim());
      }
    });
    sock.connect(port, '127.0.0.1');
  });
}

/**
 * Waits until the server at `port` sends a 220 greeting, the process exits,
 * or `timeoutMs` passes. Throws with a reason in the last two cases.
 */
export async function waitForGreeting(port: number, proc: Spawned, timeoutMs: number, logFile: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      const code = await proc.exited;
      throw new Error(`exited (${code}): ${lastLogLine(logFile)}`);
    }
    try {
      const line = await probeGreeting(port, 2000);
      if (line.startsWith('220')) return line;
      last = `greeting "${line}"`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`no 220 greeting within ${timeoutMs / 1000}s (${last})`);
}

/** The last non-empty line of a log file, trimmed to a readable length. */
export function lastLogLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const line = lines[lines.length - 1] ?? '(empty log)';
    return line.length > 160 ? `${line.slice(0, 157)}...` : line;
  } catch {
    return '(no log)';
  }
}

export function countFiles(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

/**
 * Moves every file of a maildir's new/ into its cur/, as a mail reader
 * does, so that new/ counts only what the next load delivers. Renamed, not
 * deleted: on this machine's ext4 (mounted without a journal), creating
 * a file costs more for a minute or more after many files near it were
 * deleted (the inode allocator skips recently deleted inodes, one buffer
 * lookup each), and a mass delete between two loads would bill the next
 * load, of whichever server, for it.
 */
export function moveToCur(newDir: string): void {
  const cur = join(newDir, '..', 'cur');
  for (const name of readdirSync(newDir)) renameSync(join(newDir, name), join(cur, name));
}

/** Empties a directory without removing it. */
export function emptyDir(dir: string): void {
  for (const name of readdirSync(dir)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}

/** The newest ctime (ms since the epoch) of the files in a directory; -Infinity when empty. */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * The files of one load in a maildir's new/: those whose header section
 * says `X-Bench-Load: <tag>`. A server that fell behind may still be
 * delivering the previous load while the next one runs; its late files
 * must not count for the wrong load. Each file is read once (its first
 * 4 KiB), when it is first seen.
 */
export class LoadFiles {
  private readonly seen = new Map<string, boolean>();

  constructor(private readonly dir: string, private readonly tag: string) {}

  count(): number {
    let mine = 0;
    for (const name of readdirSync(this.dir)) {
      let ours = this.seen.get(name);
      if (ours === undefined) {
        ours = this.carriesTag(join(this.dir, name));
        this.seen.set(name, ours);
      }
      if (ours) mine++;
    }
    return mine;
  }

  /** The newest change time among this load's files (their rename into new/). */
  lastChangeMs(): number {
    let last = -Infinity;
    for (const [name, ours] of this.seen) {
      if (!ours) continue;
      try {
        last = Math.max(last, statSync(join(this.dir, name)).ctimeMs);
      } catch {
        // vanished
      }
    }
    return last;
  }

  private carriesTag(path: string): boolean {
    const buf = Buffer.alloc(4096);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return false;
    }
    try {
      const n = readSync(fd, buf, 0, buf.length, 0);
      // The header section, each line with its end (CRLF as sent, LF in a
      // Maildir written by a Unix MDA); the tag header is the last one.
      const text = buf.toString('latin1', 0, n);
      const blank = text.search(/\r?\n\r?\n/);
      const head = blank < 0 ? text : text.slice(0, blank + 1);
      return new RegExp(`\n${LOAD_TAG_HEADER}: ${escapeRegExp(this.tag)}\r?\n`).test(`\n${head}\n`);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Starts a server in a private mount namespace (`unshare` with the
 * arguments privateNamespaceArgs built) and waits for its greeting on
 * `port`; a server that never greets is stopped before the error goes up.
 */
export async function startGreeting(
  args: string[],
  port: number,
  timeoutMs: number,
  opts: { cwd?: string; logFile: string },
): Promise<Spawned> {
  const proc = spawnServer('unshare', args, opts);
  try {
    await waitForGreeting(port, proc, timeoutMs, opts.logFile);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}
