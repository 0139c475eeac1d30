/**
 * Messages per second through the SMTP engine, and the engine's CPU time
 * per message.
 *
 *   node --import tsx impl/bench/smtp-throughput.ts [sessions] [seconds] [message-bytes]
 *
 * The engine runs in a child process with an in-memory queue (commit
 * resolves at once), so the figure is the engine's own cost: parsing,
 * the state machine, dot-unstuffing, the Received: field, replies. This
 * process plays the clients: 20 sessions by default, each sending 2 KiB
 * messages one after another over one connection, pipelining MAIL, RCPT
 * and DATA as a PIPELINING client does. The CPU figure is the child's
 * user + system time divided by the messages accepted.
 */
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { IncomingMessage } from '../src/queue/backend.ts';
import type { Envelope, EnvelopeId, MessageId } from '../src/queue/types.ts';
import { createSmtpServer } from '../src/smtp/index.ts';

if (process.argv[2] === '--engine') {
  let next = 1;
  const smtp = createSmtpServer({
    hostname: 'bench.test',
    queue: {
      async createMessage(): Promise<IncomingMessage> {
        const id = next++ as MessageId;
        let bytes = 0;
        return {
          id,
          async write(chunk) { bytes += chunk.length; },
          async commit(envelopes) {
            return envelopes.map((e, i) => ({ ...e, id: BigInt(id * 1000 + i) as EnvelopeId, messageId: id }) as Envelope);
          },
          async abort() { bytes = 0; },
        };
      },
    },
  });
  const server = createServer();
  smtp.listen(server);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: string) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'exit') process.exit(0);
  });
} else {
  const sessions = Number(process.argv[2] ?? 20);
  const seconds = Number(process.argv[3] ?? 5);
  const size = Number(process.argv[4] ?? 2048);
  await main(sessions, seconds, size);
}

async function main(sessions: number, seconds: number, size: number): Promise<void> {
  const child = fork(new URL(import.meta.url).pathname, ['--engine'], { execArgv: ['--import', 'tsx'] });
  const ask = <T>(key: string, send?: string) => new Promise<T>((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
    if (send) child.send(send);
  });
  const port = await ask<number>('port');
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n';
  const body = line.repeat(Math.ceil(size / line.length)).slice(0, size - 2) + '\r\n';
  const message = Buffer.from(`From: a@bench.test\r\nTo: b@bench.test\r\nSubject: bench\r\n\r\n${body}.\r\n`);
  const envelope = Buffer.from('MAIL FROM:<a@bench.test>\r\nRCPT TO:<b@bench.test>\r\nDATA\r\n');

  let accepted = 0;
  let running = true;
  const start = process.hrtime.bigint();
  const before = await ask<NodeJS.CpuUsage>('cpu', 'cpu');
  await Promise.all(Array.from({ length: sessions }, () => client(port, envelope, message, () => running, () => accepted++)));
  setTimeout(() => (running = false), seconds * 1000);
  await new Promise((r) => setTimeout(r, seconds * 1000 + 200));
  const after = await ask<NodeJS.CpuUsage>('cpu', 'cpu');
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuMs = (after.user - before.user + after.system - before.system) / 1000;
  console.log(`${sessions} sessions, ${size}-byte messages, ${elapsed.toFixed(1)} s`);
  console.log(`${accepted} messages, ${(accepted / elapsed).toFixed(0)} msg/s`);
  console.log(`engine CPU ${(cpuMs / accepted).toFixed(3)} ms per message`);
  child.send('exit');
}

/**
 * One client: sessions one after another, each greeting, EHLO, then up to
 * 100 messages (OpenSMTPD's default `max-mails`), until told to stop.
 * Resolves once the first session is set up.
 */
function client(port: number, envelope: Buffer, message: Buffer, go: () => boolean, done: () => void): Promise<void> {
  return new Promise((ready) => {
    const session = () => {
      const socket = connect(port, '127.0.0.1');
      let pending = '';
      let step = 0; // 0 greeting, 1 EHLO, 2 MAIL/RCPT/DATA (3 replies), 3 end of message, 4 QUIT
      let replies = 0;
      let sent = 0;
      const send = () => {
        if (!go() || sent === 100) {
          step = 4;
          return socket.end('QUIT\r\n');
        }
        sent++;
        step = 2;
        replies = 0;
        socket.write(envelope);
      };
      socket.on('data', (chunk) => {
        pending += chunk.toString('latin1');
        let nl;
        while ((nl = pending.indexOf('\r\n')) >= 0) {
          const reply = pending.slice(0, nl);
          pending = pending.slice(nl + 2);
          if (reply[3] === '-') continue;
          if (step === 0) {
            step = 1;
            socket.write('EHLO client.bench.test\r\n');
          } else if (step === 1) {
            ready();
            send();
          } else if (step === 2 && ++replies === 3) {
            if (!reply.startsWith('354')) throw new Error(reply);
            step = 3;
            socket.write(message);
          } else if (step === 3 && reply[0] !== '2') {
            throw new Error(reply);
          } else if (step === 3) {
            done();
            send();
          }
        }
      });
      socket.on('close', () => {
        if (go()) session();
      });
      socket.on('error', () => {});
    };
    session();
  });
}
