/**
 * A sysadmin's bad day: the daemon short of descriptors. What it cannot
 * do now it answers with a 4xx, and what it can do it must not refuse:
 * a message the queue could commit is not refused for want of
 * descriptors it did not need all at once.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanUpAfterEach, committedContent, Dialog, freePort, repo, sendOne, smtpdBin, startDaemon, workDir, type RunningDaemon,
} from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;

/** Whether this machine lets us mount a small tmpfs (root, and a kernel or sandbox that allows it). */
function canMountTmpfs(): boolean {
  if (!asRoot) return false;
  const probe = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  spawnSync('rmdir', [probe]);
  return ok;
}

/** Mounted file systems, unmounted after each test (before cleanUpAfterEach removes the directories). */
const mounts: string[] = [];
afterEach(() => {
  for (const dir of mounts.splice(0)) spawnSync('umount', ['-l', dir]);
});

/** The daemon under `ulimit -n LIMIT` (soft and hard: Node would raise a soft one), on the held-mail config of workDir(). */
async function serveWithLimit(limit: number, backend: 'fs' | 'log') {
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  const daemon = startDaemon(
    ['-d', '-v', '-B', `queue=${backend}`, '-f', conf, '--spool', spool],
    {},
    ['sh', '-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, smtpdBin],
  );
  running.push(daemon);
  await daemon.waitFor(/processes started/);
  return { port, spool, daemon };
}

describe.each(['fs', 'log'] as const)('few descriptors (ulimit -n 64), queue backend %s', { timeout: 60_000 }, (backend) => {
  it('a message with more recipients than free descriptors is committed, one envelope each', async () => {
    const { port, spool } = await serveWithLimit(64, backend);
    const dialog = await Dialog.open(port);
    await dialog.send('EHLO client.example.org');
    expect(await dialog.send('MAIL FROM:<alice@example.org>')).toMatch(/^250 /);
    const count = 120;
    for (let i = 0; i < count; i++) expect(await dialog.send(`RCPT TO:<user${i}@example.org>`)).toMatch(/^250 /);
    expect(await dialog.send('DATA')).toMatch(/^354 /);
    expect(await dialog.send('Subject: many recipients\r\n\r\ntoken many-rcpt-5c1e\r\n.')).toMatch(/^250 2\.0\.0 [0-9a-f]{8} Message accepted/);
    dialog.end();
    const committed = committedContent(spool, backend === 'fs' ? 'queue' : 'log');
    expect(committed).toContain('token many-rcpt-5c1e');
    for (let i = 0; i < count; i++) expect(committed).toContain(`user${i}`);
  });
});

describe.runIf(canMountTmpfs())('a spool on a file system with no room left', { timeout: 60_000 }, () => {
  it('a start that cannot make the spool\'s directories says the disk is full, not that a directory is missing', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    mkdirSync(spool);
    // 40 inodes: fewer than the fs backend's 256 buckets need.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=40,mode=0700', 'tmpfs', spool]);
    mounts.push(spool);
    const daemon = startDaemon(['-d', '-v', '-f', conf, '--spool', spool]);
    running.push(daemon);
    expect(await daemon.exited).toBe(1);
    const line = daemon.lines.find((l) => /cannot start/.test(l)) ?? '';
    expect(line).toMatch(/ENOSPC|no space left/);
    expect(line).not.toMatch(/ENOENT/);
  });

  it.each(['fs', 'log'] as const)('queue %s: a message is refused with 4xx and the log says what to do; once there is room, it is accepted', async (backend) => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    mkdirSync(spool);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', spool]);
    mounts.push(spool);
    const daemon = startDaemon(['-d', '-v', '-B', `queue=${backend}`, '-f', conf, '--spool', spool]);
    running.push(daemon);
    await daemon.waitFor(/processes started/);
    const filler = join(spool, 'filler');
    appendUntilFull(filler, Buffer.alloc(4096));
    const dialog = await Dialog.open(port);
    await dialog.send('EHLO client.example.org');
    await dialog.send('MAIL FROM:<alice@example.org>');
    await dialog.send('RCPT TO:<bob@example.org>');
    const data = await dialog.send('DATA');
    const end = data.startsWith('354') ? await dialog.send(`Subject: full\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(200) + '.') : data;
    expect(end).toMatch(/^4\d\d /);
    await daemon.waitFor(new RegExp(`warn: queue: cannot store messages in the spool ${spool}: ENOSPC.*make room there`));
    rmSync(filler);
    expect(sendOne(port, 'after-room')).toMatch(/^250 /);
    expect(daemon.proc.exitCode).toBeNull();
  });
});

/** Appends `piece` to `file` until the disk is full. */
function appendUntilFull(file: string, piece: Buffer): void {
  const fd = openSync(file, 'a');
  try {
    for (;;) writeFileSync(fd, piece);
  } catch {
    // ENOSPC: full, as wanted
  } finally {
    closeSync(fd);
  }
}

/**
 * Fills the file system at `dir` with a file of its own, then the last
 * block of `log` (a write into a block the file has needs no room);
 * returns the filler, whose removal makes room again.
 */
function fill(dir: string, log: string): string {
  const filler = join(dir, 'filler');
  appendUntilFull(filler, Buffer.alloc(4096));
  appendUntilFull(log, Buffer.from('#'));
  return filler;
}

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.runIf(canMountTmpfs())('stderr on a full file system (the log of `smtpd -d 2>>file`)', { timeout: 60_000 }, () => {
  it('the daemon goes on serving, and says how many log lines it lost once it can write again', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', logs]);
    mounts.push(logs);
    const logFile = join(logs, 'smtpd.log');
    const fd = openSync(logFile, 'a');
    const proc = spawn(process.execPath, [smtpdBin, '-d', '-v', '-f', conf, '--spool', spool], {
      cwd: repo, detached: true, stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    running.push({ pid: proc.pid! } as RunningDaemon);
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    await until(() => /processes started/.test(log()), 'the daemon started');
    const filler = fill(logs, logFile);
    for (let i = 0; i < 3; i++) expect(sendOne(port, `while-full-${i}`)).toMatch(/^250 /);
    expect(committedContent(spool)).toContain('token while-full-2');
    expect(proc.exitCode).toBeNull();
    rmSync(filler);
    expect(sendOne(port, 'after-full')).toMatch(/^250 /);
    await until(() => /log line\(s\) lost/.test(log()), 'a note of the lines lost');
    expect(log()).toMatch(/warn: smtpd: \d+ log line\(s\) lost: .*ENOSPC/);
    expect(proc.exitCode).toBeNull();
    void exited;
  });
});
