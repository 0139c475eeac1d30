/**
 * The LMTP client against Dovecot's LMTP server (a private instance, its
 * own configuration in a temporary directory) and against a scripted
 * server that answers what a test needs: per-recipient 4xx and 5xx
 * replies after the data, refusals, silence.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliverLocal } from '../../src/delivery/deliver.ts';
import { LMTP_TOTAL_MS, lmtpDeliver, parseLmtpDestination } from '../../src/delivery/lmtp.ts';
import { DELIVERY_TIMEOUT_MS } from '../../src/proc/roles/dispatcher.ts';
import { content, readMaildirWithPython, request, tempDir, unix } from './helpers.ts';

const MESSAGE = 'Subject: caf\u00e9\r\n\r\n.a line with a leading dot\r\n..two dots\r\n.\r\nFrom here\r\nlast line without end';
/** Dovecot delivers as this uid/gid: it will not deliver as root, and nobody exists everywhere. */
const NOBODY = 65534;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lmtp to Dovecot', () => {
  let dir = '';
  let port = 0;
  let dovecot: ChildProcess | undefined;
  let cleanup = () => {};

  beforeAll(async () => {
    const t = tempDir('saf-dovecot-');
    dir = t.dir;
    cleanup = t.cleanup;
    // The delivery runs as nobody, who must reach the homes under dir.
    chmodSync(dir, 0o755);
    for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub));
    chownSync(join(dir, 'home'), NOBODY, NOBODY);
    port = await freePort();
    writeFileSync(join(dir, 'dovecot.conf'), [
      `base_dir = ${dir}/run`,
      `state_dir = ${dir}/state`,
      `log_path = ${dir}/dovecot.log`,
      'protocols = lmtp',
      'ssl = no',
      'listen = 127.0.0.1',
      `mail_location = maildir:${dir}/home/%n/Maildir`,
      'passdb {', '  driver = static', '  args = nopassword=y', '}',
      // Every user is nobody, with a home under dir: no system account is needed.
      'userdb {', '  driver = static', `  args = uid=${NOBODY} gid=${NOBODY} home=${dir}/home/%n allow_all_users=yes`, '}',
      'service lmtp {', '  inet_listener lmtp {', '    address = 127.0.0.1', `    port = ${port}`, '  }', '}',
      '',
    ].join('\n'));
    dovecot = spawn('/usr/sbin/dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
    try {
      await waitForPort(port, 8000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${readFileSync(join(dir, 'dovecot.log'), 'utf8')}`);
    }
  }, 15_000);

  afterAll(async () => {
    if (dovecot && dovecot.exitCode === null) {
      const exited = new Promise((r) => dovecot!.once('exit', r));
      dovecot.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    cleanup();
  }, 10_000);

  it('delivers with rcpt-to (the address after expansion) into the maildir Dovecot keeps', async () => {
    const req = request({ kind: 'lmtp', destination: `127.0.0.1:${port}`, rcptTo: true }, '/nonexistent');
    const outcome = await deliverLocal(req, content(MESSAGE));
    expect(outcome.result).toBe('ok');
    const [msg] = readMaildirWithPython(join(dir, 'home', 'bob', 'Maildir')).inbox;
    // Dovecot adds its own trace headers on top; ours and the message follow, dots unstuffed again.
    const ours = Buffer.concat([
      Buffer.from('Return-Path: <alice@example.org>\nDelivered-To: bob+news@example.net\n'),
      unix(MESSAGE),
      Buffer.from('\n'),
    ]);
    expect(msg!.bytes.subarray(msg!.bytes.length - ours.length).equals(ours)).toBe(true);
  });

  it('without rcpt-to, sends the local user name', async () => {
    const req = request({ kind: 'lmtp', destination: `127.0.0.1:${port}`, rcptTo: false }, '/nonexistent', {
      user: { name: 'carol', uid: 1001, gid: 1001, home: '/nonexistent' },
    });
    expect((await deliverLocal(req, content(MESSAGE))).result).toBe('ok');
    expect(readMaildirWithPython(join(dir, 'home', 'carol', 'Maildir')).inbox).toHaveLength(1);
  });
});

/** A scripted LMTP server: RCPT replies by local part, one reply per accepted recipient after the dot. */
function scriptedServer(options: { silent?: boolean; replyDelayMs?: number; smtputf8?: boolean } = {}) {
  const received: { commands: string[]; data: string[] } = { commands: [], data: [] };
  const rcptReply: Record<string, string> = {
    full: '452 4.2.2 Mailbox full', nobody: '550 5.1.1 User unknown', red: '550 5.1.1 \x1b[31mred\x07 bell',
  };
  const afterData: Record<string, string> = { later: '451 4.3.0 Try again', reject: '554 5.6.0 Message refused' };
  const server = createServer((socket: Socket) => {
    if (options.silent) return;
    socket.setEncoding('latin1');
    socket.on('error', () => {});
    if (options.replyDelayMs !== undefined) {
      // Every reply comes late, each one well within any reply timeout.
      const write = socket.write.bind(socket) as (text: string) => boolean;
      socket.write = ((text: string) => {
        setTimeout(() => socket.destroyed || write(text), options.replyDelayMs);
        return true;
      }) as typeof socket.write;
    }
    socket.write('220 scripted LMTP\r\n');
    let buffer = '';
    let inData = false;
    let data = '';
    const accepted: string[] = [];
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          const atStart = data === '' && buffer.startsWith('.\r\n');
          if (end < 0 && !atStart) return;
          data += atStart ? '' : buffer.slice(0, end + 2);
          buffer = buffer.slice(atStart ? 3 : end + 5);
          received.data.push(data);
          inData = false;
          for (const rcpt of accepted) socket.write(`${afterData[rcpt.split('@')[0]!] ?? `250 2.0.0 <${rcpt}> delivered`}\r\n`);
          continue;
        }
        const nl = buffer.indexOf('\r\n');
        if (nl < 0) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        received.commands.push(line);
        const rcpt = /^RCPT TO:<(.*)>$/.exec(line)?.[1];
        if (line.startsWith('LHLO')) socket.write(`250-scripted\r\n250-PIPELINING\r\n${options.smtputf8 ? '250-SMTPUTF8\r\n' : ''}250 8BITMIME\r\n`);
        else if (line.startsWith('MAIL FROM:')) socket.write('250 2.1.0 Ok\r\n');
        else if (rcpt !== undefined) {
          const reply = rcptReply[rcpt.split('@')[0]!];
          if (!reply) accepted.push(rcpt);
          socket.write(`${reply ?? '250 2.1.5 Ok'}\r\n`);
        } else if (line === 'DATA') {
          inData = true;
          data = '';
          socket.write('354 go ahead\r\n');
        } else if (line === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
        else socket.write('500 5.5.1 what?\r\n');
      }
    });
  });
  return { server, received };
}

describe('lmtp, reply by reply', () => {
  let server: Server | undefined;
  let cleanup = () => {};
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    cleanup();
  });

  async function listen(s: ReturnType<typeof scriptedServer>, where: 'tcp' | 'unix' = 'tcp') {
    server = s.server;
    if (where === 'unix') {
      const t = tempDir();
      cleanup = t.cleanup;
      const path = join(t.dir, 'lmtp.sock');
      await new Promise<void>((r) => server!.listen(path, r));
      return path;
    }
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('sends an address in UTF-8 only to a server that offers SMTPUTF8, with SMTPUTF8 on MAIL FROM', async () => {
    const transaction = { lhlo: 'mx.example.org', mailFrom: 'j\u00f6rg@example.org', recipients: ['zo\u00eb@example.net'] };
    const withIt = scriptedServer({ smtputf8: true });
    let outcomes = await lmtpDeliver(parseLmtpDestination(await listen(withIt)), transaction, content('Subject: hi\r\n\r\nhi\r\n'));
    expect(outcomes.map((o) => o.result)).toEqual(['ok']);
    const utf8 = (line: string) => Buffer.from(line, 'latin1').toString('utf8');
    expect(withIt.received.commands.map(utf8)).toContain('MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8');
    await new Promise((r) => server!.close(r));

    const without = scriptedServer();
    outcomes = await lmtpDeliver(parseLmtpDestination(await listen(without)), transaction, content('Subject: hi\r\n\r\nhi\r\n'));
    expect(outcomes).toEqual([{ result: 'permfail', reason: expect.stringMatching(/address is in UTF-8, and the server does not offer SMTPUTF8/) }]);
    expect(without.received.commands.some((c) => c.startsWith('MAIL'))).toBe(false);
  });

  it('sends plain addresses without SMTPUTF8, whatever the server offers', async () => {
    const s = scriptedServer({ smtputf8: true });
    const transaction = { lhlo: 'mx.example.org', mailFrom: 'alice@example.org', recipients: ['bob@example.net'] };
    const outcomes = await lmtpDeliver(parseLmtpDestination(await listen(s)), transaction, content('Subject: hi\r\n\r\nhi\r\n'));
    expect(outcomes.map((o) => o.result)).toEqual(['ok']);
    expect(s.received.commands).toContain('MAIL FROM:<alice@example.org>');
  });

  it('returns one outcome per recipient of one transaction: 2xx ok, 4xx tempfail, 5xx permfail', async () => {
    const s = scriptedServer();
    const destination = parseLmtpDestination(await listen(s));
    const recipients = ['ok@example.net', 'full@example.net', 'nobody@example.net', 'later@example.net', 'reject@example.net', 'ok2@example.net'];
    const outcomes = await lmtpDeliver(destination, { lhlo: 'mx.example.net', mailFrom: '', recipients }, content(MESSAGE));
    expect(outcomes.map((o) => o.result)).toEqual(['ok', 'tempfail', 'permfail', 'tempfail', 'permfail', 'ok']);
    expect(outcomes[1]!.result !== 'ok' && outcomes[1]!.reason).toMatch(/RCPT TO:<full@example.net>: 452 4\.2\.2 Mailbox full$/);
    expect(outcomes[4]!.result !== 'ok' && outcomes[4]!.reason).toMatch(/after DATA for <reject@example.net>: 554 5\.6\.0 Message refused$/);
    expect(s.received.commands.slice(0, 2)).toEqual(['LHLO mx.example.net', 'MAIL FROM:<>']);
    // Dot-stuffed, CRLF, and the last line given its line end.
    expect(s.received.data).toEqual(['Subject: caf\u00c3\u00a9\r\n\r\n..a line with a leading dot\r\n...two dots\r\n..\r\nFrom here\r\nlast line without end\r\n']);
  });

  it('keeps no control character of a reply in the reason, which goes into the envelope and the log', async () => {
    const s = scriptedServer();
    const destination = parseLmtpDestination(await listen(s));
    const [outcome] = await lmtpDeliver(destination, { lhlo: 'mx.example.net', mailFrom: '', recipients: ['red@example.net'] }, content(MESSAGE));
    expect(outcome).toMatchObject({ result: 'permfail' });
    expect(outcome!.result !== 'ok' && outcome!.reason).toMatch(/550 5\.1\.1 \?\[31mred\? bell$/);
  });

  it('through deliverLocal: a 4xx recipient is a tempfail, a 5xx a permfail; over a Unix socket', async () => {
    const path = await listen(scriptedServer(), 'unix');
    const method = { kind: 'lmtp' as const, destination: path, rcptTo: true };
    const full = request(method, '/nonexistent');
    full.envelope.recipient = { user: 'full', domain: 'example.net' };
    expect(await deliverLocal(full, content(MESSAGE))).toMatchObject({ result: 'tempfail', reason: expect.stringContaining('452 4.2.2') });
    const nobody = request(method, '/nonexistent');
    nobody.envelope.recipient = { user: 'nobody', domain: 'example.net' };
    expect(await deliverLocal(nobody, content(MESSAGE))).toMatchObject({ result: 'permfail', reason: expect.stringContaining('550 5.1.1') });
  });

  it('no connection, or no answer, is a temporary failure for every recipient', async () => {
    const closedPort = await freePort();
    const refused = await lmtpDeliver(parseLmtpDestination(`127.0.0.1:${closedPort}`), { lhlo: 'x', mailFrom: '', recipients: ['a@b', 'c@d'] }, content(MESSAGE));
    expect(refused.map((o) => o.result)).toEqual(['tempfail', 'tempfail']);
    expect(refused[0]!.result !== 'ok' && refused[0]!.reason).toMatch(/^lmtp 127\.0\.0\.1:\d+: connect: cannot connect: .*ECONNREFUSED/);

    const silent = parseLmtpDestination(await listen(scriptedServer({ silent: true })));
    const started = Date.now();
    const [outcome] = await lmtpDeliver(silent, { lhlo: 'x', mailFrom: '', recipients: ['a@b'] }, content(MESSAGE), { replyMs: 200 });
    expect(outcome).toMatchObject({ result: 'tempfail', reason: expect.stringMatching(/greeting: no (reply|progress) within 200 ms$/) });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a transaction whose every step is in time but whose whole is not ends at its deadline, before the dispatcher gives up on it', async () => {
    // Six replies of 150 ms each: 900 ms in all, against a deadline of 500 ms. Were the
    // transaction to run past the dispatcher's limit, a 250 at its end would be heard by
    // nobody, the attempt counted as failed, and the retry would deliver the message again.
    const slow = parseLmtpDestination(await listen(scriptedServer({ replyDelayMs: 150 })));
    const started = Date.now();
    const [outcome] = await lmtpDeliver(slow, { lhlo: 'x', mailFrom: '', recipients: ['a@b'] }, content(MESSAGE), { totalMs: 500 });
    expect(outcome).toMatchObject({ result: 'tempfail', reason: expect.stringMatching(/: no end within 500 ms$/) });
    expect(Date.now() - started).toBeLessThan(800);
    // By default the deadline leaves the agent time to answer before the dispatcher stops waiting.
    expect(LMTP_TOTAL_MS).toBeLessThanOrEqual(DELIVERY_TIMEOUT_MS - 60_000);
  });

  it('reads destinations as OpenSMTPD writes them', () => {
    expect(parseLmtpDestination('/var/run/dovecot/lmtp')).toEqual({ kind: 'unix', path: '/var/run/dovecot/lmtp' });
    expect(parseLmtpDestination('localhost:24')).toEqual({ kind: 'inet', host: 'localhost', port: 24 });
    expect(parseLmtpDestination('localhost')).toEqual({ kind: 'inet', host: 'localhost', port: 24 });
    expect(parseLmtpDestination('[IPv6:::1]:2424')).toEqual({ kind: 'inet', host: '::1', port: 2424 });
    expect(() => parseLmtpDestination('::1:24')).toThrow(/brackets/);
    expect(() => parseLmtpDestination('host:0')).toThrow(/bad port/);
  });
});
