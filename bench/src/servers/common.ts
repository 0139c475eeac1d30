import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spawned } from '../proc.ts';
import type { RunningServer } from './types.ts';

/** A fresh temporary directory, world-traversable so an unprivileged delivery agent can reach the maildir in it. */
export function makeTempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `saf-bench-${name}-`));
  chmodSync(dir, 0o755);
  return dir;
}

/** uid and gid of a local user, via id(1) (Node has no getpwnam). */
export function userIds(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** The local user the benchmark delivers to. OpenSMTPD refuses to deliver as root, so an unprivileged one. */
export const DELIVERY_USER = process.env.BENCH_USER ?? 'nobody';

/** Creates DIR/Maildir/{tmp,new,cur} owned by `owner` (when given); returns the Maildir path. */
export function makeMaildir(dir: string, owner?: { uid: number; gid: number }): string {
  const md = join(dir, 'Maildir');
  for (const sub of ['', 'tmp', 'new', 'cur']) {
    const p = join(md, sub);
    mkdirSync(p, { recursive: true, mode: 0o700 });
    if (owner) chownSync(p, owner.uid, owner.gid);
  }
  return md;
}

/** An smtpd.conf (OpenSMTPD 6.8 grammar) that accepts anything on 127.0.0.1:port and delivers to one maildir. */
export function smtpdConf(port: number, maildir: string): string {
  return [
    `listen on 127.0.0.1 port ${port}`,
    `action "m" maildir "${maildir}"`,
    `match from any for any action "m"`,
    '',
  ].join('\n');
}

/** Quotes one word for /bin/sh. */
export function shQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Writes DIR/run.sh, which (run under `unshare -m`) bind-mounts a resolv.conf
 * naming 127.0.0.1 (where nothing listens) over /etc/resolv.conf, plus any
 * extra binds, then execs `command` (a shell command line). Every server runs
 * this way, so none of them can send DNS queries off the machine and all of
 * them see the same fast-failing resolver. Returns the arguments for
 * spawnServer('unshare', ...). The mounts vanish with the namespace; the
 * machine's own files are never touched.
 */
export function privateNamespaceArgs(dir: string, command: string, binds: Array<[string, string]> = []): string[] {
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, 'nameserver 127.0.0.1\n');
  const script = join(dir, 'run.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      '# Runs inside `unshare -m`: these mounts are private and end with the namespace.',
      'set -e',
      'mount --make-rprivate /',
      `mount --bind ${shQuote(resolv)} /etc/resolv.conf`,
      ...binds.map(([src, dst]) => `mount --bind ${shQuote(src)} ${shQuote(dst)}`),
      `exec ${command}`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return ['-m', '/bin/sh', script];
}

/**
 * What the benchmark knows of a server once startGreeting has it up: it
 * delivers to DELIVERY_USER's `maildir`, and its process tree is `proc`.
 */
export function runningServer(
  name: string, description: string, port: number, proc: Spawned, where: { dir: string; maildir: string; logFile: string },
): RunningServer {
  return {
    name,
    description,
    port,
    pid: proc.pid,
    rcpt: `${DELIVERY_USER}@localhost`,
    maildirNew: join(where.maildir, 'new'),
    logFile: where.logFile,
    dir: where.dir,
    stop: () => proc.stop(),
  };
}
