/**
 * Local delivery's peers misbehaving, through the whole daemon: an LMTP
 * server that hangs up before its greeting, an mda that exits without
 * reading the message. Each attempt fails for now, the envelope stays in
 * the queue, and the next try, ten seconds later, delivers it once.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, startServing, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;
let lmtpServer: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (lmtpServer ? lmtpServer.close(r) : r(undefined)));
  lmtpServer = undefined;
});

/** One message of `bodyLines` lines from alice@example.net to `to`, with Python's smtplib. */
function send(port: number, to: string, bodyLines = 1): void {
  const script = `
import smtplib, sys
body = b''.join(b'line %07d of a message that will not be read the first time\\r\\n' % i for i in range(int(sys.argv[3])))
with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30) as s:
    s.sendmail('alice@example.net', [sys.argv[2]], b'Subject: peers\\r\\n\\r\\n' + body)
`;
  execFileSync('python3', ['-c', script, String(port), to, String(bodyLines)], { timeout: 30_000 });
}

describe.runIf(asRoot)('a local delivery whose peer misbehaves', { timeout: 60_000 }, () => {
  it('an LMTP server that hangs up before its greeting: TempFail, and the retry delivers', async () => {
    let connections = 0;
    const received: string[] = [];
    lmtpServer = createServer((socket) => {
      socket.on('error', () => {});
      if (++connections === 1) return socket.end();
      socket.setEncoding('latin1');
      socket.write('220 fake LMTP\r\n');
      let buffer = '';
      let inData = false;
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        for (;;) {
          if (inData) {
            const end = buffer.indexOf('\r\n.\r\n');
            if (end < 0) return;
            received.push(buffer.slice(0, end + 2));
            buffer = buffer.slice(end + 5);
            inData = false;
            socket.write('250 2.0.0 stored\r\n');
            continue;
          }
          const nl = buffer.indexOf('\r\n');
          if (nl < 0) return;
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 2);
          if (line === 'DATA') inData = true;
          if (line === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
          else socket.write(line === 'DATA' ? '354 go ahead\r\n' : '250 Ok\r\n');
        }
      });
    });
    await new Promise<void>((r) => lmtpServer!.listen(0, '127.0.0.1', r));
    const lmtpPort = (lmtpServer.address() as AddressInfo).port;

    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    writeFileSync(conf, [
      `listen on 127.0.0.1 port ${port}`,
      `action "lmtp" lmtp "127.0.0.1:${lmtpPort}" rcpt-to`,
      'match from any for domain "example.org" action "lmtp"',
      '',
    ].join('\n'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    send(port, 'nobody@example.org');
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=TempFail stat=lmtp 127\.0\.0\.1:\d+: greeting: connection closed by the server/);
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=Ok stat=Delivered/, 20_000);
    expect(connections).toBe(2);
    expect(received).toHaveLength(1);
    expect(received[0]).toContain('Subject: peers');
  });

  it('an mda that exits without reading a large message: TempFail, the agent lives on, and the retry delivers it whole', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const out = join(dir, 'out');
    mkdirSync(out);
    chmodSync(out, 0o1777);
    // The first run leaves a mark and exits 0 without reading; the next reads the message.
    const script = join(dir, 'mda.sh');
    writeFileSync(script, `#!/bin/sh\nif [ ! -e "${out}/tried" ]; then touch "${out}/tried"; exit 0; fi\ncat > "${out}/message"\n`);
    chmodSync(script, 0o755);
    writeFileSync(conf, [
      `listen on 127.0.0.1 port ${port}`,
      `action "mda" mda "${script}"`,
      'match from any for domain "example.org" action "mda"',
      '',
    ].join('\n'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const lines = 50_000; // 3.5 MB: far more than a pipe holds, so the first run's writes fail (EPIPE)
    send(port, 'nobody@example.org', lines);
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=TempFail stat=mda exited before reading the whole message/);
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=Ok stat=Delivered/, 20_000);
    const stored = readFileSync(join(out, 'message'), 'latin1');
    expect(stored).toContain('Subject: peers');
    expect(stored.match(/^line \d{7} of a message/gm)).toHaveLength(lines);
    // One agent did both: the failed writes did not end it.
    expect(daemon.lines.filter((l) => /delivery agent for nobody started/.test(l))).toHaveLength(1);
  });
});
