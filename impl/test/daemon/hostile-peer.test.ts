/**
 * A child of the daemon in an attacker's hands, played for real: the test
 * copies one of that child's descriptors (pidfd_getfd, as root) and
 * writes on the socket to a neighbour what no honest process would.
 * The neighbour must refuse it, and a channel it drops must not leave
 * the daemon up and half-working: mail accepted that is never delivered,
 * or every message answered 421 while a monitor sees a live daemon.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, processGroup, startServing, workDir, writeOnDescriptor } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;

/** The pid of the daemon's child named `name` (`smtpd: name` in ps). */
function childPid(daemonPid: number, name: string): number {
  const found = processGroup(daemonPid).find((p) => p.args === `smtpd: ${name}`);
  if (!found) throw new Error(`no ${name} process in ${JSON.stringify(processGroup(daemonPid))}`);
  return found.pid;
}

/**
 * The descriptor number, in process `from`, of its end of the socket pair
 * whose other end process `to` holds: `ss -xp` lists each Unix socket
 * with its own inode, its peer's inode, and who holds it.
 */
function linkFd(from: number, to: number): number {
  const rows = execFileSync('ss', ['-xpnH'], { encoding: 'utf8' }).split('\n').flatMap((line) => {
    const m = /^\S+\s+\S+\s+\d+\s+\d+\s+\S+\s+(\d+)\s+\S+\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) return [];
    const holders = [...m[3]!.matchAll(/pid=(\d+),fd=(\d+)/g)].map((h) => ({ pid: Number(h[1]), fd: Number(h[2]) }));
    return [{ inode: m[1]!, peer: m[2]!, holders }];
  });
  const theirs = new Set(rows.filter((r) => r.holders.some((h) => h.pid === to)).map((r) => r.inode));
  for (const row of rows) {
    const mine = row.holders.find((h) => h.pid === from);
    if (mine && theirs.has(row.peer)) return mine.fd;
  }
  throw new Error(`no socket of pid ${from} leads to pid ${to}`);
}

/** A frame of our framing (transport.ts): length, kind, payload. */
function frame(kind: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head[4] = kind;
  return Buffer.concat([head, payload]);
}

describe.skipIf(!asRoot)('a child that writes garbage to a neighbour', { timeout: 60_000 }, () => {
  it.each([
    ['bytes that are no JSON', frame(0, Buffer.from('not json'))],
    ['a frame of a kind that does not exist', frame(9, Buffer.from('x'))],
    ['a frame longer than any allowed', Buffer.from([0xff, 0xff, 0xff, 0xff, 0])],
  ])('smtp sends the queue %s: the queue drops the channel with a log line, and the daemon stops instead of answering 421 forever', async (_what, bytes) => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const smtp = childPid(daemon.pid, 'smtp');
    const queue = childPid(daemon.pid, 'queue');
    writeOnDescriptor(smtp, linkFd(smtp, queue), bytes);
    await daemon.waitFor(/^warn: queue: dropped the channel to smtp: (a frame is not JSON|unknown frame kind 9|bad framing: frame of \d+ bytes)$/, 10_000);
    await daemon.waitFor(/^smtpd: queue process dropped its channel to smtp \(.*\); shutting down$/, 10_000);
    expect(await daemon.exited).toBe(1);
  });
});
