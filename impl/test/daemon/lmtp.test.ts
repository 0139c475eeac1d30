/**
 * An `lmtp` action through the whole daemon, to Dovecot's LMTP server
 * started by the test on 127.0.0.1: the message arrives over SMTP, and
 * Dovecot stores it in the Maildir it keeps for the user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, startServing, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let dovecot: ChildProcess | undefined;
afterEach(() => {
  dovecot?.kill('SIGTERM');
  dovecot = undefined;
});

async function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A private Dovecot with only LMTP, storing mail for any user under dir/home/<user>/Maildir as nobody. */
async function startDovecot(dir: string): Promise<number> {
  const port = await freePort();
  for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub), { recursive: true });
  chownSync(join(dir, 'home'), NOBODY, NOBODY);
  writeFileSync(join(dir, 'dovecot.conf'), [
    `base_dir = ${dir}/run`, `state_dir = ${dir}/state`, `log_path = ${dir}/dovecot.log`,
    'protocols = lmtp', 'ssl = no', 'listen = 127.0.0.1',
    `mail_location = maildir:${dir}/home/%n/Maildir`,
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'userdb {', '  driver = static', `  args = uid=${NOBODY} gid=${NOBODY} home=${dir}/home/%n allow_all_users=yes`, '}',
    'service lmtp {', '  inet_listener lmtp {', '    address = 127.0.0.1', `    port = ${port}`, '  }', '}', '',
  ].join('\n'));
  dovecot = spawn('/usr/sbin/dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
  await listening(port, 10_000);
  return port;
}

describe.runIf(asRoot)('an lmtp action, to Dovecot', { timeout: 60_000 }, () => {
  it('hands the message to Dovecot, which stores it in the user\'s Maildir', async () => {
    const smtpPort = await freePort();
    const { dir, conf, spool } = workDir(smtpPort);
    dirs.push(dir);
    chmodSync(dir, 0o755);
    const lmtpPort = await startDovecot(join(dir, 'dovecot'));
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
