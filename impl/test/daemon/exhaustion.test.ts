/**
 * A sysadmin's bad day: the daemon short of descriptors. What it cannot
 * do now it answers with a 4xx, and what it can do it must not refuse:
 * a message the queue could commit is not refused for want of
 * descriptors it did not need all at once.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUpAfterEach, committedContent, Dialog, freePort, smtpdBin, startDaemon, workDir } from './helpers.ts';

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
});
