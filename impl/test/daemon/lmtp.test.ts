/**
 * An `lmtp` action through the whole daemon, to Dovecot's LMTP server
 * started by the test on 127.0.0.1: the message arrives over SMTP, and
 * Dovecot stores it in the Maildir it keeps for the user.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDovecot, stopDovecot } from './dovecot.ts';
import { cleanUpAfterEach, freePort, startServing, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;
let dovecot: ChildProcess | undefined;
afterEach(async () => {
  await stopDovecot(dovecot);
  dovecot = undefined;
});

describe.runIf(asRoot)('an lmtp action, to Dovecot', { timeout: 60_000 }, () => {
  it('hands the message to Dovecot, which stores it in the user\'s Maildir', async () => {
    const smtpPort = await freePort();
    const { dir, conf, spool } = workDir(smtpPort);
    dirs.push(dir);
    chmodSync(dir, 0o755);
    const started = await startDovecot(join(dir, 'dovecot'));
    dovecot = started.proc;
    const lmtpPort = started.port;
    writeFileSync(conf, [
      `listen on 127.0.0.1 port ${smtpPort}`,
      `action "lmtp" lmtp "127.0.0.1:${lmtpPort}" rcpt-to`,
      'match from any for domain "example.org" action "lmtp"',
      '',
    ].join('\n'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const sent = spawnSync('swaks', [
      '--server', `127.0.0.1:${smtpPort}`, '--from', 'alice@example.net', '--to', 'nobody@example.org',
      '--h-Subject', 'over lmtp', '--body', 'stored by dovecot',
    ], { encoding: 'utf8', timeout: 30_000 });
    expect(sent.stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=Ok stat=Delivered/);
    // With rcpt-to, Dovecot is given the whole address; %n is its user part.
    const newDir = join(dir, 'dovecot', 'home', 'nobody', 'Maildir', 'new');
    expect(existsSync(newDir)).toBe(true);
    const [file] = readdirSync(newDir);
    const stored = readFileSync(join(newDir, file!), 'utf8');
    expect(stored).toContain('Subject: over lmtp');
    expect(stored).toContain('stored by dovecot');
    expect(stored).toContain('Delivered-To: nobody@example.org');
  });
});
