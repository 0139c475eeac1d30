/**
 * Running the real daemon in tests: `smtpd -d -v -f CONF --spool DIR`
 * through bin/smtpd.mjs, in a process group of its own, on 127.0.0.1 and
 * a free port.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export const repo = join(import.meta.dirname, '..', '..', '..');
export const smtpdBin = join(repo, 'impl', 'bin', 'smtpd.mjs');
export const clientScript = join(import.meta.dirname, 'fixtures', 'smtp-client.py');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether tests can give the daemon a /var/mail of their own: root, and a mount namespace (`unshare -m`). */
export const canMountVarMail = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

const MAIL_GID = Number(/^mail:[^:]*:(\d+):/m.exec(readFileSync('/etc/group', 'utf8'))?.[1] ?? NaN);

/** DIR/mail made as Debian ships /var/mail: root:mail, mode 2775. */
export function debianMailSpool(dir: string): string {
  const mail = join(dir, 'mail');
  mkdirSync(mail);
  chownSync(mail, 0, MAIL_GID);
  chmodSync(mail, 0o2775);
  return mail;
}

/** The daemon with `mail` mounted on /var/mail, in a mount namespace of its own (see canMountVarMail). */
export function startDaemonWithVarMail(args: string[], mail: string): RunningDaemon {
  const script = 'mount --bind "$0" /var/mail && exec "$@"';
  return startDaemon(args, {}, ['unshare', '-m', 'sh', '-c', script, mail, process.execPath, smtpdBin]);
}

/** A fresh directory (mode 0755, so an unprivileged daemon can use it) with smtpd.conf for `port`. */
export function workDir(port: number): { dir: string; conf: string; spool: string } {
  const dir = mkdtempSync(join(tmpdir(), 'smtpd-test-'));
  execFileSync('chmod', ['0755', dir]);
  const conf = join(dir, 'smtpd.conf');
  writeFileSync(conf, [
    `listen on 127.0.0.1 port ${port}`,
    // Mail for example.org is held in the queue: a relay to port 9 on
    // this host, where nothing listens, fails for now and is retried
    // minutes later, so these tests can read what the queue committed.
    'action "hold" relay host smtp://127.0.0.1:9',
    'match from any for domain "example.org" action "hold"',
    '',
  ].join('\n'));
  return { dir, conf, spool: join(dir, 'spool') };
}

export interface RunningDaemon {
  proc: ChildProcess;
  pid: number;
  /** Every stderr line so far. */
  lines: string[];
  /** Resolves with the first line (already seen or to come) that matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit status (or the signal's name). */
  exited: Promise<number | string>;
}

export function startDaemon(args: string[], options: SpawnOptions = {}, command: string[] = [process.execPath, smtpdBin]): RunningDaemon {
  const [file, ...rest] = command;
  const proc = spawn(file!, [...rest, ...args], { cwd: repo, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let partial = '';
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    proc,
    pid: proc.pid!,
    lines,
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
  };
}

/** Starts the daemon as in production (but in the foreground, -d) and waits until it serves. */
export async function startServing(conf: string, spool: string, extra: string[] = []): Promise<RunningDaemon> {
  const daemon = startDaemon(['-d', '-v', '-f', conf, '--spool', spool, ...extra]);
  await daemon.waitFor(/processes started/);
  return daemon;
}

/**
 * The daemon's processes in a process group: `ps -o pid,user,args`. tsx
 * runs esbuild as a helper process beside each Node process it loads
 * TypeScript into; those are tsx's, not the daemon's, and are left out,
 * and so are zombies waiting for an init that does not reap them.
 */
export function processGroup(pgid: number): { pid: number; user: string; args: string }[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,user=,args='], { encoding: 'utf8' });
  return out.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m || Number(m[2]) !== pgid || /esbuild|<defunct>/.test(m[4]!)) return [];
    return [{ pid: Number(m[1]), user: m[3]!, args: m[4]! }];
  });
}

/**
 * Everything under the spool's queue/ directory (the fs backend), or its
 * log/ directory for the log backend, concatenated: what committed
 * messages hold.
 */
export function committedContent(spool: string, under: 'queue' | 'log' = 'queue'): string {
  const parts: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else parts.push(readFileSync(path, 'latin1'));
    }
  };
  walk(join(spool, under));
  return parts.join('\n');
}

/** Runs the Python client to completion. */
export function sendOne(port: number, token: string): string {
  return execFileSync('python3', [clientScript, 'send', String(port), token], { encoding: 'utf8', timeout: 30_000 }).trim();
}

/** A hand-driven SMTP conversation, one command at a time, for tests that must act between commands. */
export class Dialog {
  private buffer = '';
  private waiting: ((reply: string) => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(private readonly socket: import('node:net').Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      this.deliver();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<Dialog> {
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const dialog = new Dialog(socket);
    await dialog.reply();
    return dialog;
  }

  /** Sends a line (CRLF added) and resolves with the whole reply, its lines joined with `\n`. */
  send(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  reply(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }

  private deliver(): void {
    const m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(this.buffer);
    if (!m || !this.waiting) return;
    this.buffer = this.buffer.slice(m[0].length);
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve(m[0].trimEnd().replace(/\r/g, ''));
  }

  end(): void {
    this.socket.end();
  }
}

/** Whether a TCP connection to the port is refused now. */
export async function refused(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

/**
 * The daemons and folders a test file starts, stopped and removed after
 * each test: the whole process group is killed, so no child outlives it.
 */
export function cleanUpAfterEach(): { running: RunningDaemon[]; dirs: string[] } {
  const running: RunningDaemon[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of running.splice(0)) {
      try {
        process.kill(-d.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return { running, dirs };
}

/**
 * Writes `bytes` on a copy of descriptor `fd` of process `pid`, as code
 * running in that process could: pidfd_getfd(2), which needs what ptrace
 * needs. With `user`, the copy is taken and written as that user (the
 * one the process runs as), so the test plays a process taken over, not
 * root reaching in.
 */
export function writeOnDescriptor(pid: number, fd: number, bytes: Buffer, user?: string): void {
  const script = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, int(sys.argv[1]), 0)
fd = libc.syscall(438, pidfd, int(sys.argv[2]), 0)
assert pidfd >= 0 and fd >= 0, os.strerror(ctypes.get_errno())
os.write(fd, bytes.fromhex(sys.argv[3]))
`;
  const python = ['python3', '-c', script, String(pid), String(fd), bytes.toString('hex')];
  const [file, ...args] = user ? ['runuser', '-u', user, '--', ...python] : python;
  execFileSync(file!, args, { timeout: 10_000 });
}
