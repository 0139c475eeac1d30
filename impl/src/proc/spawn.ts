/**
 * Starting a child: a new Node process running one of our TypeScript
 * entry points, as the right user, with an IPC channel to the parent.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Credentials } from './privileges.ts';
import type { ProcessName } from './processes.ts';

/**
 * The children are .ts files, and Node 20 runs only JavaScript, so each
 * child needs tsx's loader, and must be told so. A child started with
 * fork() inherits `process.execArgv`, which is enough when the parent
 * was started as `tsx smtpd.ts` (tsx puts `--import .../loader.mjs` there),
 * but bin/smtpd.mjs registers tsx from inside the process with
 * `register()`, which leaves execArgv empty: its children would be plain
 * Node and fail on the first type annotation. So the loader is always
 * passed explicitly, by absolute URL, because a child running as _smtpd
 * in another directory could not resolve the bare name `tsx`.
 */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * With SMTPD_CPU_PROF=DIR in the environment, every child writes a V8 CPU
 * profile into DIR when it exits (one sample per 500 µs, light enough
 * to leave the figures recognisable): a tool for finding where a process
 * spends its time, read by bench/src/cpu-profile.ts. DIR must be
 * writable by _smtpd, _smtpq and the delivery users (mode 1777).
 */
export function childExecArgv(): string[] {
  const profileDir = process.env.SMTPD_CPU_PROF;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval', '500'] : [];
  return ['--import', TSX_LOADER, ...profile];
}

/** The entry point every daemon child runs: child.ts, with the process name as its argument. */
export const CHILD_ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface ForkOptions {
  /** Run as this user; unset, the child runs as the parent does. */
  credentials?: Credentials;
  /** The program to run; child.ts by default. Tests fork their own. */
  entry?: string;
  env?: NodeJS.ProcessEnv;
}

// #region fork-as-user
/**
 * Forks a child, already as its user. OpenSMTPD's children drop
 * privileges themselves right after fork(2): chroot(2) into the empty
 * directory, then setgroups(2), setresgid(2), setresuid(2). Node can do
 * only part of that, and not from inside: it has no chroot at all, and
 * a process.setuid() in a running child would keep whatever it had
 * already opened as root. So the change happens before the child runs
 * a line of its own: fork() takes `uid` and `gid`, which libuv applies
 * between fork and exec, after clearing the supplementary groups. What
 * stays missing is the chroot: an _smtpd process can read whatever any
 * user may read.
 *
 * stdin is /dev/null; stdout and stderr are the parent's, so a child's log
 * lines go where the parent's go without a relay; fd 3 is the IPC
 * channel, which is also the child's lifeline (child.ts).
 */
export function forkChild(name: ProcessName | string, options: ForkOptions = {}): ChildProcess {
  const { credentials } = options;
  return fork(options.entry ?? CHILD_ENTRY, [name], {
    execArgv: childExecArgv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
    env: options.env ?? process.env,
    ...(credentials && { uid: credentials.uid, gid: credentials.gid }),
  });
}
// #endregion fork-as-user

// #region spawn-with-sockets
/**
 * Starts a child with no Node IPC channel at all: its links are the
 * Unix sockets in `sockets`, which it finds at descriptors 3, 4 and so
 * on, and reads with our own framing (transport.ts). This is for a child
 * the parent must not trust: a delivery agent runs as the recipient, who
 * can take it over (ptrace(2) it, or copy its descriptors) and write
 * anything to its end. Node's IPC channel trusts its peer: its reader
 * parses each line as JSON inside Node itself, where a line that is not
 * JSON throws in Node's reader, out of reach of any code of ours that
 * could catch it there and go on, and the parent, root, dies with every
 * process of the daemon. Our framing limits a
 * frame's size, and a bad frame closes the one channel it came on.
 *
 * The child gets its own duplicates of the sockets; the caller closes
 * its copies once this returns.
 */
export function spawnWithSockets(entry: string, name: string, sockets: Socket[], options: Omit<ForkOptions, 'entry'> = {}): ChildProcess {
  const { credentials } = options;
  return spawn(process.execPath, [...childExecArgv(), entry, name], {
    stdio: ['ignore', 'inherit', 'inherit', ...sockets],
    env: options.env ?? process.env,
    ...(credentials && { uid: credentials.uid, gid: credentials.gid }),
  });
}
// #endregion spawn-with-sockets
