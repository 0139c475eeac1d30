import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Dialog, freePort, repo, smtpdBin, startDaemon, workDir, type RunningDaemon, cleanUpAfterEach } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();

describe('the smtpd command line', { timeout: 60_000 }, () => {
  it('refuses an unknown trace flag before starting anything', () => {
    const r = spawnSync(process.execPath, [smtpdBin, '-d', '-T', 'imgs', '-f', '/dev/null'], { cwd: repo, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^smtpd: -T: unknown trace flag "imgs"/);
  });

  it('says which trace flags it accepts but has nothing to print for', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [smtpdBin, ...args, '-n', '-f', '/dev/null'], { cwd: repo, encoding: 'utf8' }).stderr;
    expect(run('-T', 'io,smtp', '-T', 'stat')).toMatch(/^smtpd: -T io,stat: nothing traces these yet \(traced: imsg, smtp, /);
    expect(run('-T', 'smtp,lookup')).not.toContain('nothing traces');
    expect(run('-T', 'all')).not.toContain('nothing traces');
  });

  it('with -n, refuses a listener on an interface this machine does not have, as the start would', async () => {
    const port = await freePort();
    const { dir, conf } = workDir(port);
    dirs.push(dir);
    const rules = 'action "local" maildir\nmatch for local action "local"\n';
    writeFileSync(conf, `listen on 127.0.0.1 port ${port}\nlisten on eth9 port ${port}\n${rules}`);
    const r = spawnSync(process.execPath, [smtpdBin, '-n', '-f', conf], { cwd: repo, encoding: 'utf8' });
    expect(r.stderr).toBe(`${conf}:2: no interface, address or host named "eth9"\n`);
    expect(r.status).toBe(1);
    writeFileSync(conf, `listen on lo port ${port}\n${rules}`);
    expect(spawnSync(process.execPath, [smtpdBin, '-n', '-f', conf], { cwd: repo, encoding: 'utf8' }).stdout).toBe('configuration OK\n');
  });

  it('without -d, prints its pid and writes maillog lines to stderr', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const daemon = startDaemon(['-f', conf, '--spool', spool]);
    running.push(daemon);
    let stdout = '';
    daemon.proc.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    await daemon.waitFor(/ smtpd\[\d+\]: info: queue: 0 envelope\(s\) in the spool at start-up$/);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stdout).toBe(`smtpd: running in the foreground, pid ${daemon.pid}, logging to stderr\n`);
    expect(daemon.lines[0]).toMatch(new RegExp(`^[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+ smtpd\\[${daemon.pid}\\]: info: OpenSMTPD-compatible smtpd starting$`));
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('with -T imsg, traces the messages between processes', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const daemon = startDaemon(['-d', '-T', 'imsg', '-f', conf, '--spool', spool]);
    running.push(daemon);
    await daemon.waitFor(/^imsg: parent -> smtp: proc\.start$/);
    await daemon.waitFor(/^imsg: smtp <- parent: proc\.start$/);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.lines).toContain('imsg: parent -> queue: proc.stop');
  });

  it('with -T smtp,lookup, traces the dialogue and the tables that answered it', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    writeFileSync(`${dir}/aliases`, 'postmaster: nobody\n');
    writeFileSync(conf, [
      `table aliases file:${dir}/aliases`,
      `listen on 127.0.0.1 port ${port}`,
      'action "hold" relay host smtp://127.0.0.1:9',
      'action "local" mbox alias <aliases>',
      'match from any for domain "example.org" action "hold"',
      'match from any for local action "local"',
      '',
    ].join('\n'));
    const daemon = startDaemon(['-d', '-v', '-T', 'smtp,lookup', '-f', conf, '--spool', spool]);
    running.push(daemon);
    await daemon.waitFor(/processes started/);
    const dialog = await Dialog.open(port);
    await dialog.send('EHLO client.test');
    await dialog.send('MAIL FROM:<bob@client.test>');
    expect(await dialog.send('RCPT TO:<postmaster>')).toMatch(/^250 /);
    dialog.end();
    const id = /^smtp: ([0-9a-f]{16}): <<< EHLO client\.test$/.exec(await daemon.waitFor(/<<< EHLO client\.test$/))![1];
    await daemon.waitFor(new RegExp(`^smtp: ${id}: <<< RCPT TO:<postmaster>$`));
    await daemon.waitFor(new RegExp(`^smtp: ${id}: >>> 250 2\\.1\\.5 Destination address valid: Recipient ok$`));
    await daemon.waitFor(/^lookup: lookup "postmaster" as ALIAS in table file:aliases -> "nobody"$/);
  });
});
