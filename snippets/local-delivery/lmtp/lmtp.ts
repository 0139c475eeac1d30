// One message for three mailboxes in one LMTP transaction, to a made-up
// mail store that knows dave and erin, and whose disk is full for erin.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { lmtpDeliver } from '../../../impl/src/delivery/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'lmtp-'));
const path = join(dir, 'lmtp.sock');
const server = createServer(store);
await new Promise<void>((resolve) => server.listen(path, resolve));

try {
  const message = 'From: alice@example.org\r\nSubject: minutes\r\n\r\nSee below.\r\n.signature: Alice\r\n';
  const outcomes = await lmtpDeliver(
    { kind: 'unix', path },
    { lhlo: 'mx.example.net', mailFrom: 'alice@example.org', recipients: ['dave', 'erin', 'frank'] },
    Readable.from([Buffer.from(message)]),
  );
  console.log('\noutcomes:');
  for (const [i, o] of outcomes.entries()) {
    console.log(`  ${['dave', 'erin', 'frank'][i]}: ${o.result}${o.result === 'ok' ? '' : ` (${o.reason.replace(path, '<socket>')})`}`);
  }
} finally {
  server.close();
  await rm(dir, { recursive: true, force: true });
}

/** The mail store's side: prints every line it reads (C:) and writes (S:). */
function store(socket: Socket): void {
  const reply = (line: string) => {
    console.log(`S: ${line}`);
    socket.write(`${line}\r\n`);
  };
  const accepted: string[] = [];
  let inData = false;
  let buffer = '';
  reply('220 store.example.net LMTP ready');
  socket.on('data', (chunk) => {
    buffer += chunk.toString('latin1');
    for (let nl = buffer.indexOf('\r\n'); nl >= 0; nl = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      console.log(`C: ${line}`);
      if (inData) {
        if (line !== '.') continue;
        inData = false;
        // RFC 2033: one reply for each recipient that RCPT TO accepted, in order.
        for (const rcpt of accepted) reply(rcpt === 'erin' ? '452 4.2.2 <erin> mailbox full' : `250 2.0.0 <${rcpt}> delivered`);
      } else if (line.startsWith('LHLO ')) reply('250 store.example.net');
      else if (line.startsWith('MAIL FROM:')) reply('250 2.1.0 ok');
      else if (line.startsWith('RCPT TO:')) {
        const rcpt = line.slice('RCPT TO:<'.length, -1);
        if (rcpt === 'frank') reply('550 5.1.1 <frank> no such mailbox');
        else {
          accepted.push(rcpt);
          reply('250 2.1.5 ok');
        }
      } else if (line === 'DATA') {
        inData = true;
        reply('354 go ahead');
      } else if (line === 'QUIT') {
        reply('221 bye');
        socket.end();
      }
    }
  });
}
