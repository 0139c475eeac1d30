/**
 * smtpd without -f: the embedded default (cli/embedded-default.ts). It
 * checks and prints itself like any configuration, and run in an empty
 * directory it is a working mail server for whoever started it: the
 * message Python's smtplib sends to <user>@localhost lands in
 * ./var/mail/<user>/new, where Python's mailbox module reads it back.
 *
 * The embedded default always listens on 127.0.0.1 port 2525, which may
 * be taken on the machine that runs the tests (by a `pnpm smtpd` left
 * running, or the book's example). So the daemon runs, when it can (as
 * root), in a network namespace of its own (`unshare -n`, with `lo` up),
 * where 2525 is always free, and the client joins it with `nsenter`.
 * Otherwise it runs on the host's 127.0.0.1 if 2525 is free there, and
 * the test is skipped, saying why, if it is not.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EMBEDDED_PORT } from '../../src/cli/embedded-default.ts';
import { cleanUpAfterEach, smtpdBin, startDaemon } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const user = userInfo().username;

/** Where the daemon can have port 2525: a private network, the host's, or nowhere (and why). */
type Network = { kind: 'private' } | { kind: 'host' } | { kind: 'none'; reason: string };

async function chooseNetwork(): Promise<Network> {
  const unshare = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8' });
  if (unshare.status === 0) return { kind: 'private' };
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(EMBEDDED_PORT, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (free) return { kind: 'host' };
  const why = (unshare.stderr || unshare.error?.message || `exit status ${unshare.status}`).trim().split('\n')[0];
  return {
    kind: 'none',
    reason: `port ${EMBEDDED_PORT} on 127.0.0.1 is taken, and no private network could be made for the daemon (unshare -n: ${why})`,
  };
}

const network = await chooseNetwork();

/** A fresh, empty working directory; 0755, so that the queue, as _smtpq, can get through it to ./var/spool. */
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smtpd-embedded-'));
  execFileSync('chmod', ['0755', dir]);
  dirs.push(dir);
  return dir;
}

function smtpdIn(dir: string, args: string[]) {
  return spawnSync(process.execPath, [smtpdBin, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
}

/** Runs a Python script in the daemon's network: joined with nsenter when the daemon has its own. */
function python(daemonPid: number, script: string, args: string[]): string {
  const command = ['python3', '-c', script, ...args];
  const [file, ...rest] = network.kind === 'private' ? ['nsenter', `--net=/proc/${daemonPid}/ns/net`, ...command] : command;
  return execFileSync(file!, rest, { encoding: 'utf8', timeout: 30_000 });
}

/** One message by smtplib, and one for another domain, which the embedded default must refuse. */
const SEND = `
import json, smtplib, sys
user, port = sys.argv[1], int(sys.argv[2])
out = {}
with smtplib.SMTP('127.0.0.1', port) as smtp:
    out['refused'] = smtp.sendmail('me@localhost', [user + '@localhost'],
        'From: me@localhost\\nTo: ' + user + '@localhost\\nSubject: embedded default\\n\\nhello from the embedded test\\n')
    smtp.mail('me@localhost')
    out['relay'] = list(smtp.rcpt('someone@example.org'))
    out['relay'][1] = out['relay'][1].decode()
print(json.dumps(out))
`;

const READ = `
import json, mailbox, sys
out = []
for m in mailbox.Maildir(sys.argv[1], create=False):
    out.append({'subject': m['Subject'] or '', 'deliveredTo': m['Delivered-To'] or '', 'returnPath': m['Return-Path'] or '',
                'body': m.get_payload(decode=True).decode()})
print(json.dumps(out))
`;

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('smtpd without -f: the embedded default', { timeout: 90_000 }, () => {
  it('smtpd -n checks it, prints "configuration OK" and creates nothing', () => {
    const dir = freshDir();
    const r = smtpdIn(dir, ['-n']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('configuration OK\n');
    expect(r.status).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('smtpd -n -v prints it: 127.0.0.1 port 2525, a Maildir per user under ./var/mail, local mail only', () => {
    const dir = freshDir();
    const r = smtpdIn(dir, ['-n', '-v']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe([
      `listen on 127.0.0.1 port ${EMBEDDED_PORT}`,
      `action "local" maildir "${dir}/var/mail/%{user.username}"`,
      'match from local for local action "local"',
      'configuration OK',
      '',
    ].join('\n'));
  });

  it(`smtpd -d in an empty directory prints the banner and delivers to ./var/mail/${user}/new`, async (ctx) => {
    if (network.kind === 'none') {
      console.warn(`embedded.test.ts: skipped: ${network.reason}`);
      ctx.skip(network.reason);
      return;
    }
    const dir = freshDir();
    const command = network.kind === 'private'
      ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, smtpdBin]
      : [process.execPath, smtpdBin];
    const daemon = startDaemon(['-d'], { cwd: dir }, command);
    running.push(daemon);
    let stdout = '';
    daemon.proc.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));

    const banner = await until('the banner', () => (stdout.includes('stop with Ctrl-C\n') ? stdout : undefined));
    const mail = join(dir, 'var', 'mail');
    expect(banner.split('\n')).toEqual([
      'smtpd: no -f given: running the embedded default configuration',
      `smtpd:   listening on 127.0.0.1 port ${EMBEDDED_PORT}, for local mail only`,
      `smtpd:   queue in ${dir}/var/spool`,
      `smtpd:   mail for ${user}@localhost goes to ${mail}/${user}/new/`,
      'smtpd: send a test message with:',
      `smtpd:   swaks --server 127.0.0.1:${EMBEDDED_PORT} --to ${user}@localhost`,
      `smtpd:   or: python3 -c "import smtplib; smtplib.SMTP('127.0.0.1', ${EMBEDDED_PORT}).sendmail('me@localhost', ['${user}@localhost'], 'Subject: hi\\n\\nhello\\n')"`,
      'smtpd: stop with Ctrl-C',
      '',
    ]);

    // ./var as embedded-default.ts makes it: 0755, so the queue (_smtpq
    // when started as root) gets through to its 0700 spool; ./var/mail
    // 1777, so each user's agent can make its own Maildir, and sticky,
    // so that it cannot remove another's.
    const mode = (path: string) => statSync(path).mode & 0o7777;
    expect(mode(join(dir, 'var'))).toBe(0o755);
    expect(mode(mail)).toBe(0o1777);
    expect(mode(join(dir, 'var', 'spool'))).toBe(0o700);

    const sent = JSON.parse(python(daemon.pid, SEND, [user, String(EMBEDDED_PORT)])) as { refused: object; relay: [number, string] };
    expect(sent.refused).toEqual({});
    // Nothing is relayed: a recipient in another domain matches no rule.
    expect(sent.relay[0]).toBe(550);

    const maildir = join(mail, user);
    await until(`a message in ${maildir}/new`, () => (existsSync(join(maildir, 'new')) && readdirSync(join(maildir, 'new')).length > 0 ? true : undefined));
    await daemon.waitFor(/ mda delivery .* result=Ok stat=Delivered$/);
    const [message, ...more] = JSON.parse(python(daemon.pid, READ, [maildir])) as Record<string, string>[];
    expect(more).toEqual([]);
    expect(message).toEqual({
      subject: 'embedded default',
      deliveredTo: `${user}@localhost`,
      returnPath: '<me@localhost>',
      body: 'hello from the embedded test\n',
    });
    const [file] = readdirSync(join(maildir, 'new'));
    const written = statSync(join(maildir, 'new', file!));
    expect(written.uid).toBe(userInfo().uid);
    expect(mode(maildir)).toBe(0o700);
    expect(readFileSync(join(maildir, 'new', file!), 'utf8')).toMatch(/^Return-Path: <me@localhost>\nDelivered-To: /);

    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('with --spool, the banner names that spool, the one the queue uses, not ./var/spool', async (ctx) => {
    if (network.kind === 'none') {
      console.warn(`embedded.test.ts: skipped: ${network.reason}`);
      ctx.skip(network.reason);
      return;
    }
    const dir = freshDir();
    const spool = join(dir, 'elsewhere');
    const command = network.kind === 'private'
      ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, smtpdBin]
      : [process.execPath, smtpdBin];
    const daemon = startDaemon(['-d', '--spool', spool], { cwd: dir }, command);
    running.push(daemon);
    let stdout = '';
    daemon.proc.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));

    const banner = await until('the banner', () => (stdout.includes('stop with Ctrl-C\n') ? stdout : undefined));
    expect(banner.split('\n')).toContain(`smtpd:   queue in ${spool}`);
    expect(existsSync(spool)).toBe(true);
    expect(existsSync(join(dir, 'var', 'spool'))).toBe(false);

    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
  });
});
