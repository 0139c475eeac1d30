import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort, processGroup, sendOne, smtpdBin, startDaemon, workDir, type RunningDaemon, cleanUpAfterEach } from './helpers.ts';

const isRoot = process.getuid?.() === 0;
const { running, dirs } = cleanUpAfterEach();

/** Runs smtpd as `nobody`, as an administrator without root would. */
function asNobody(args: string[]): RunningDaemon {
  const daemon = startDaemon(args, {}, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, smtpdBin]);
  running.push(daemon);
  return daemon;
}

describe.runIf(isRoot)('started by an unprivileged user', { timeout: 60_000 }, () => {
  it('refuses port 25 with a line that says what to do, and exits 1', async () => {
    const { dir, conf, spool } = workDir(25);
    dirs.push(dir);
    execFileSync('chown', ['nobody', dir]);
    const daemon = asNobody(['-d', '-f', conf, '--spool', spool]);
    expect(await daemon.exited).toBe(1);
    expect(daemon.lines).toContain(
      'smtpd: cannot listen on 127.0.0.1 port 25: permission denied: ports below 1024 need root; ' +
        'run smtpd as root, or use a port above 1023 (listen on ... port 2525)',
    );
  });

  it('runs the same split, every process as that user, and accepts mail', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    execFileSync('chown', ['nobody', dir]);
    const daemon = asNobody(['-d', '-v', '-f', conf, '--spool', spool]);
    await daemon.waitFor(/processes started/);
    const table = processGroup(daemon.pid).filter((p) => p.args.startsWith('smtpd: '));
    expect(table.map((p) => p.args).sort()).toEqual([
      'smtpd: control', 'smtpd: crypto', 'smtpd: dispatcher', 'smtpd: lookup', 'smtpd: parent', 'smtpd: queue', 'smtpd: scheduler', 'smtpd: smtp',
    ]);
    expect(new Set(table.map((p) => p.user))).toEqual(new Set(['nobody']));
    expect(sendOne(port, 'as-nobody')).toMatch(/^250 /);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
  });
});
