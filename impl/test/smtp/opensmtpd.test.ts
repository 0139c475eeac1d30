/**
 * The engine and the real OpenSMTPD 6.8 (/usr/sbin/smtpd), side by side:
 * the same scripted session, one command at a time, to both; every reply
 * must be the same, except where this engine departs from 6.8 on
 * purpose, and those departures are listed here with their reason.
 *
 * smtpd runs as root in the foreground, in a mount namespace of its own
 * (`unshare -m`) where /etc/resolv.conf points at 127.0.0.1 (so that no
 * session waits for DNS), /run is empty (its control socket cannot clash
 * with another smtpd) and the spool is a temporary directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, startServer } from './helpers.ts';

const SMTPD = '/usr/sbin/smtpd';
const isRoot = process.getuid?.() === 0;
const why = !existsSync(SMTPD) ? `${SMTPD} is not installed` : !isRoot ? 'smtpd must run as root' : undefined;
if (why && process.env.CI !== undefined) throw new Error(`OpenSMTPD comparison cannot run: ${why}`);
if (why) console.warn(`skipping the OpenSMTPD 6.8 comparison: ${why}`);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`smtpd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let dir: string;
let smtpd: ChildProcess | undefined;
let smtpdPort = 0;
let smtpdLog = '';

beforeAll(async () => {
  if (why) return;
  dir = mkdtempSync(join(tmpdir(), 'saf-opensmtpd-'));
  const spool = join(dir, 'spool');
  mkdirSync(spool, { mode: 0o711 });
  smtpdPort = await freePort();
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'smtpd.conf'), [
    `listen on 127.0.0.1 port ${smtpdPort} hostname mx.test`,
    'action "out" relay host smtp://127.0.0.1:1',
    'match from any for any action "out"',
    '',
  ].join('\n'));
  const script = [
    `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
    'mount -t tmpfs tmpfs /run',
    `mount --bind ${spool} /var/spool/smtpd`,
    `exec ${SMTPD} -d -f ${dir}/smtpd.conf`,
  ].join(' && ');
  smtpd = spawn('unshare', ['-m', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  smtpd.stdout!.on('data', (d: Buffer) => (smtpdLog += d.toString()));
  smtpd.stderr!.on('data', (d: Buffer) => (smtpdLog += d.toString()));
  await waitForPort(smtpdPort, 10_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${smtpdLog}`);
  });
}, 20_000);

afterAll(async () => {
  if (smtpd && smtpd.exitCode === null) {
    const exited = new Promise((resolve) => smtpd!.once('exit', resolve));
    smtpd.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A step of the script: what the client sends (without CRLF; `null` reads the greeting). */
type Step = string | null;

/**
 * Where this engine answers otherwise than 6.8, and why. Each entry is
 * keyed by the step; the test checks 6.8's reply too, so the table stays
 * true as long as it passes.
 */
const DEPARTURES: Record<string, { opensmtpd: string; ours: string; why: string }> = {
  'EHLO client.test': {
    opensmtpd: '250-mx.test Hello client.test [127.0.0.1], pleased to meet you|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SIZE 36700160|250-DSN|250 HELP',
    ours: '250-mx.test Hello client.test [127.0.0.1], pleased to meet you|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SIZE 36700160|250-DSN|250-PIPELINING|250-SMTPUTF8|250 HELP',
    why: 'PIPELINING (RFC 2920) and SMTPUTF8 (RFC 6531) are offered',
  },
  HELP: {
    opensmtpd: '214-2.0.0 This is OpenSMTPD|214-2.0.0 To report bugs in the implementation, please contact bugs@openbsd.org|214-2.0.0 with full details|214 2.0.0 End of HELP info',
    ours: '214-2.0.0 This is OpenSMTPD|214 2.0.0 End of HELP info',
    why: "OpenBSD's bug address is not ours to give",
  },
  'VRFY joe': { opensmtpd: '500 5.5.1 Invalid command: Command unrecognized', ours: '502 5.5.1 Invalid command: VRFY is disabled', why: 'RFC 5321 3.5.3: a disabled VRFY is 502 (or 252)' },
  'NOOP now': { opensmtpd: '500 5.5.4 Invalid command arguments: command does not accept arguments.', ours: '250 2.0.0 Ok', why: 'RFC 5321 4.1.1.9: NOOP takes an optional string' },
  'RSET now': {
    opensmtpd: '500 5.5.4 Invalid command arguments: command does not accept arguments.',
    ours: '501 5.5.4 Invalid command arguments: command does not accept arguments.',
    why: 'RFC 5321 4.2.2: a syntax error in the arguments is 501',
  },
  'DATA now': {
    opensmtpd: '500 5.5.4 Invalid command arguments: command does not accept arguments.',
    ours: '501 5.5.4 Invalid command arguments: command does not accept arguments.',
    why: 'as RSET',
  },
  'MAIL FROM:alice@example.com': {
    opensmtpd: '553 5.1.0 Sender address syntax error',
    ours: "501 5.1.7 Sender address syntax error: address must be enclosed in '<' and '>'",
    why: 'RFC 5321 4.2.2 (501) and RFC 3463 (x.1.7, sender syntax), with the reason',
  },
  'RCPT TO:<>': {
    opensmtpd: '501 5.1.3 Recipient address syntax error',
    ours: '501 5.1.3 Recipient address syntax error: empty address',
    why: 'the reason is given',
  },
  'RCPT TO:<bob@example.org> FOO=1': {
    opensmtpd: '503 Unsupported option FOO=1',
    ours: '555 5.5.4 Invalid command arguments: Unsupported option FOO=1',
    why: 'RFC 5321 4.2.3: an unknown parameter is 555',
  },
  'MAIL FROM:<alice@example.com> SIZE=999999999999': {
    opensmtpd: '250 2.0.0 Ok',
    ours: '552 5.3.4 Message too big for system: Message size exceeds fixed maximum message size',
    why: 'RFC 1870 6.1: a declared SIZE over the limit is refused at once',
  },
  'EHLO again.test': {
    opensmtpd: '503 5.5.1 Invalid command: Already identified',
    ours: '250-mx.test Hello again.test [127.0.0.1], pleased to meet you|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SIZE 36700160|250-DSN|250-PIPELINING|250-SMTPUTF8|250 HELP',
    why: 'RFC 5321 4.1.4: EHLO may be repeated and resets the session',
  },
};

const SCRIPT: Step[] = [
  null, 'NOOP', 'MAIL FROM:<alice@example.com>', 'HELO', 'EHLO not a name', 'EHLO client.test', 'HELP', 'VRFY joe',
  'FOO', 'NOOP now', 'RSET now', 'RCPT TO:<bob@example.org>', 'DATA', 'STARTTLS', 'AUTH PLAIN',
  'MAIL FROM:alice@example.com', 'MAIL FROM:<alice@example.com>', 'MAIL FROM:<alice@example.com>', 'RCPT TO:<>',
  'RCPT TO:<bob@example.org> FOO=1', 'RCPT TO:<bob@example.org>', 'RCPT TO:<postmaster>', 'DATA now', 'DATA',
  'Subject: compared\r\n\r\nHello.\r\n.', 'RSET', 'MAIL FROM:<alice@example.com> SIZE=999999999999', 'RSET',
  'EHLO again.test', 'QUIT',
];

/** The reply as one line; message ids, which differ, become <msgid>. */
function normal(reply: string): string {
  return reply.replace(/\n/g, '|').replace(/^250 2\.0\.0 [0-9a-f]{8} /, '250 2.0.0 <msgid> ');
}

describe.skipIf(why !== undefined)('against OpenSMTPD 6.8', () => {
  it('gives the same replies to a scripted session, but for the listed departures', async () => {
    const ours = await startServer({ software: 'OpenSMTPD', resolveName: async () => 'localhost' });
    const a = await RawClient.connect(smtpdPort);
    const b = await RawClient.connect(ours.port);
    const table: string[] = [];
    for (const step of SCRIPT) {
      if (step !== null) {
        a.send(`${step}\r\n`);
        b.send(`${step}\r\n`);
      }
      const [theirs, mine] = [normal(await a.reply()), normal(await b.reply())];
      const departure = step === null ? undefined : DEPARTURES[step];
      table.push(`${step ?? '(connect)'}\n  6.8:  ${theirs}\n  ours: ${mine}`);
      if (departure) {
        expect(theirs, `OpenSMTPD to ${step}`).toBe(departure.opensmtpd);
        expect(mine, `ours to ${step}`).toBe(departure.ours);
      } else {
        expect(mine, `${table.join('\n')}\n^ the replies to ${step ?? 'the connection'} differ`).toBe(theirs);
      }
    }
    expect(Object.keys(DEPARTURES).every((step) => SCRIPT.includes(step))).toBe(true);
  });

  it('writes the same Received: field', async () => {
    const ours = await startServer({ software: 'OpenSMTPD', resolveName: async () => 'localhost' });
    for (const port of [smtpdPort, ours.port]) {
      const c = await RawClient.connect(port);
      await c.reply();
      for (const line of ['EHLO client.test', 'MAIL FROM:<alice@example.com>', 'RCPT TO:<bob@example.org>', 'DATA']) await c.command(line);
      expect(await c.command('Subject: received\r\n\r\nHello.\r\n.')).toMatch(/^250 /);
      await c.command('QUIT');
    }
    const queue = join(dir, 'spool', 'queue');
    const files = readdirSync(queue, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('/message'));
    const texts = files.map((f) => readFileSync(join(queue, f), 'latin1')).filter((t) => t.includes('Subject: received'));
    expect(texts).toHaveLength(1);
    const header = (text: string) => text.slice(0, text.indexOf('Subject:'))
      .replace(/\r\n/g, '\n').replace(/id [0-9a-f]{8}/, 'id <msgid>').replace(/\t\w{3}, .*\n$/, '\t<date>\n');
    expect(header(ours.store.committed()[0]!.text)).toBe(header(texts[0]!));
    expect(header(texts[0]!)).toBe('Received: from client.test (localhost [127.0.0.1])\n\tby mx.test (OpenSMTPD) with ESMTP id <msgid>\n\tfor <bob@example.org>;\n\t<date>\n');
  });
});
