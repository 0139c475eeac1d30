/**
 * The LMTP client against servers that misbehave: replies missing, extra
 * or in pieces, refusals where none belong, silence, hang-ups, floods.
 * Each fake server is a few lines of node:net on 127.0.0.1 or a Unix
 * socket in a temporary directory, answering as a plain LMTP server
 * except where the test says otherwise.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lmtpDeliver, type LmtpDestination, type LmtpTimeouts } from '../../src/delivery/lmtp.ts';
import type { DeliveryOutcome } from '../../src/delivery/types.ts';
import { content, tempDirPerTest } from './helpers.ts';

const RECIPIENTS = ['dave@example.net', 'erin@example.net', 'frank@example.net'];
const MESSAGE = 'Subject: hostile\r\n\r\nhello\r\n';

/** What the fake server saw. */
interface Seen {
  commands: string[];
  /** Each message, as it came over the wire: dot-stuffed, CRLF, without the final `.\r\n`. */
  data: string[];
}

/**
 * How the fake server departs from a plain one. `greeting` is written on
 * connection (null: nothing), then `onConnect` runs; `onLine` sees each
 * command, and `.` for the end of the data, and returns true when it has
 * answered itself.
 */
interface Misbehaviour {
  greeting?: string | null;
  onConnect?: (socket: Socket) => void;
  onLine?: (line: string, socket: Socket, seen: Seen) => boolean;
}

/** An onLine that answers a command starting with `command` (`.`: the end of the data) with `text`, and is a plain server otherwise. */
const answering = (command: string, text: string, then: 'end' | 'write' = 'write') => (line: string, socket: Socket) => {
  if (!line.startsWith(command)) return false;
  if (then === 'end') socket.end(text);
  else socket.write(text);
  return true;
};

function fakeServer(misbehaviour: Misbehaviour = {}): { server: Server; seen: Seen } {
  const seen: Seen = { commands: [], data: [] };
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    const greeting = misbehaviour.greeting === undefined ? '220 fake LMTP\r\n' : misbehaviour.greeting;
    if (greeting !== null) socket.write(greeting);
    misbehaviour.onConnect?.(socket);
    let buffer = '';
    let inData = false;
    let accepted = 0;
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        let line: string;
        if (inData) {
          const end = buffer.startsWith('.\r\n') ? 0 : buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          seen.data.push(end === 0 ? '' : buffer.slice(0, end + 2));
          buffer = buffer.slice(end === 0 ? 3 : end + 5);
          inData = false;
          line = '.';
        } else {
          const nl = buffer.indexOf('\r\n');
          if (nl < 0) return;
          line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 2);
          seen.commands.push(line);
          if (line === 'DATA') inData = true;
        }
        if (misbehaviour.onLine?.(line, socket, seen)) continue;
        if (line.startsWith('LHLO')) socket.write('250-fake\r\n250 PIPELINING\r\n');
        else if (line.startsWith('MAIL')) socket.write('250 2.1.0 Ok\r\n');
        else if (line.startsWith('RCPT')) {
          accepted += 1;
          socket.write('250 2.1.5 Ok\r\n');
        } else if (line === 'DATA') socket.write('354 go ahead\r\n');
        else if (line === '.') socket.write('250 2.0.0 Ok\r\n'.repeat(accepted));
        else if (line === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
        else socket.write('500 5.5.1 what?\r\n');
      }
    });
  });
  return { server, seen };
}

let listening: Server | undefined;
const connections = new Set<Socket>();
afterEach(async () => {
  // A server that stopped reading or answering keeps its connection open: close it too.
  for (const socket of connections) socket.destroy();
  connections.clear();
  await new Promise((r) => (listening ? listening.close(r) : r(undefined)));
  listening = undefined;
});

async function listen(server: Server): Promise<LmtpDestination> {
  listening = server;
  server.on('connection', (socket: Socket) => connections.add(socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { kind: 'inet', host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

/** Short limits, so that a test about a limit takes a moment; a test that should not reach them never waits for them. */
const SHORT: LmtpTimeouts = { replyMs: 2000, dataReplyMs: 2000, totalMs: 5000 };

async function deliver(
  destination: LmtpDestination, message: string | AsyncIterable<unknown> = MESSAGE, timeouts: LmtpTimeouts = SHORT, recipients = RECIPIENTS,
): Promise<DeliveryOutcome[]> {
  const body = typeof message === 'string' ? content(message) : message;
  return lmtpDeliver(destination, { lhlo: 'mx.example.net', mailFrom: 'alice@example.org', recipients }, body, timeouts);
}

/** Writes `text` a few bytes at a time, each piece in a segment of its own. */
function dribble(socket: Socket, text: string): void {
  socket.setNoDelay(true);
  let at = 0;
  const next = () => {
    if (at >= text.length || socket.destroyed) return;
    socket.write(text.slice(at, at + 3));
    at += 3;
    setTimeout(next, 2);
  };
  next();
}

const results = (outcomes: DeliveryOutcome[]) => outcomes.map((o) => o.result);
const reason = (o: DeliveryOutcome | undefined) => (o && o.result !== 'ok' ? o.reason : o?.detail);

describe('replies after the data', () => {
  it('fewer than the recipients, then a hang-up: those answered keep their answer, the others are tried again', async () => {
    const { server } = fakeServer({ onLine: answering('.', '250 2.0.0 dave Ok\r\n', 'end') });
    const outcomes = await deliver(await listen(server));
    expect(outcomes).toEqual([
      { result: 'ok', detail: expect.stringMatching(/after DATA for <dave@example.net>: 250 2\.0\.0 dave Ok$/) },
      { result: 'tempfail', reason: expect.stringMatching(/: final dot: connection closed by the server$/) },
      { result: 'tempfail', reason: expect.stringMatching(/: final dot: connection closed by the server$/) },
    ]);
  });

  it('more than the recipients: one each, in order, and the rest is not read as anything', async () => {
    const { server } = fakeServer({ onLine: answering('.', '250 2.0.0 one\r\n452 4.2.2 two\r\n550 5.1.1 three\r\n250 four\r\n554 five\r\n') });
    const outcomes = await deliver(await listen(server));
    expect(results(outcomes)).toEqual(['ok', 'tempfail', 'permfail']);
    expect(reason(outcomes[2])).toMatch(/550 5\.1\.1 three$/);
  });

  it('in pieces of a few bytes, line ends split between CR and LF, one of them multi-line: each recipient its own', async () => {
    const { server } = fakeServer({
      greeting: null,
      onConnect: (socket) => dribble(socket, '220-fake\r\n220 LMTP\r\n'),
      onLine: (line, socket) => {
        if (line !== '.') return false;
        dribble(socket, '250-2.0.0 dave\r\n250-stored in\r\n250 INBOX\r\n452 4.2.2 erin is over quota\r\n550 5.1.1 no frank\r\n');
        return true;
      },
    });
    const outcomes = await deliver(await listen(server));
    expect(outcomes).toEqual([
      { result: 'ok', detail: expect.stringMatching(/: 250 2\.0\.0 dave stored in INBOX$/) },
      { result: 'tempfail', reason: expect.stringMatching(/after DATA for <erin@example.net>: 452 4\.2\.2 erin is over quota$/) },
      { result: 'permfail', reason: expect.stringMatching(/after DATA for <frank@example.net>: 550 5\.1\.1 no frank$/) },
    ]);
  });

  it('none, the server taking its time: the reply time for the data, then every recipient is tried again', async () => {
    const { server } = fakeServer({ onLine: (line) => line === '.' });
    const outcomes = await deliver(await listen(server), MESSAGE, { ...SHORT, dataReplyMs: 300 });
    expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
    expect(reason(outcomes[0])).toMatch(/: final dot: no reply within 300 ms$/);
  });

  it('a line with no code fails the transaction for now; a line past 512 octets is read, and cut in the reason', async () => {
    let { server } = fakeServer({ onLine: answering('.', '250 2.0.0 Ok\r\nsaved, thanks\r\n250 2.0.0 Ok\r\n') });
    let outcomes = await deliver(await listen(server));
    expect(results(outcomes)).toEqual(['ok', 'tempfail', 'tempfail']);
    expect(reason(outcomes[1])).toMatch(/: final dot: invalid reply line "saved, thanks"$/);
    await new Promise((r) => server.close(r));

    ({ server } = fakeServer({ onLine: answering('.', `250 2.0.0 ${'x'.repeat(1000)}\r\n`.repeat(3)) }));
    outcomes = await deliver(await listen(server));
    expect(results(outcomes)).toEqual(['ok', 'ok', 'ok']);
    const quoted = /after DATA for <dave@example.net>: (250 2\.0\.0 x+\.\.\.)$/.exec(reason(outcomes[0])!)?.[1];
    expect(quoted).toHaveLength(300);
  });
});

describe('refusals and silence before the data', () => {
  const cases: [what: string, misbehaviour: Misbehaviour, why: RegExp][] = [
    ['a 421 greeting', { greeting: '421 4.3.2 shutting down\r\n' }, /: greeting: 421 4\.3\.2 shutting down$/],
    ['a hang-up for a greeting', { greeting: null, onConnect: (socket) => socket.end() }, /: greeting: connection closed by the server$/],
    ['a greeting that never comes', { greeting: null }, /: greeting: no reply within 300 ms$/],
    ['an LHLO refused, as an SMTP server does', { onLine: answering('LHLO', '500 5.5.1 unrecognized command\r\n') }, /: LHLO: 500 5\.5\.1 unrecognized command$/],
  ];
  it.each(cases)('%s: every recipient is tried again, and no transaction is started', async (_, misbehaviour, why) => {
    const { server, seen } = fakeServer(misbehaviour);
    const outcomes = await deliver(await listen(server), MESSAGE, { ...SHORT, replyMs: 300 });
    expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
    expect(reason(outcomes[0])).toMatch(why);
    expect(seen.commands.filter((c) => c.startsWith('MAIL'))).toEqual([]);
  });

  const freshDir = tempDirPerTest('saf-lmtp-');
  it('a Unix socket path with nothing there, or with a file that is no socket: tried again later', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'file'), 'not a socket');
    for (const [name, code] of [['missing', 'ENOENT'], ['file', 'ECONNREFUSED']]) {
      const outcomes = await deliver({ kind: 'unix', path: join(dir, name!) });
      expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
      expect(reason(outcomes[0])).toMatch(new RegExp(`^lmtp ${join(dir, name!)}: connect: cannot connect: .*${code}`));
    }
  });
});

describe('an LMTP server that sends without end', () => {
  it('a multi-line reply that never ends is given up at 64 KiB, not read until the time limit', async () => {
    const lines = '220-and on\r\n'.repeat(4096);
    const { server } = fakeServer({
      greeting: null,
      onConnect: (socket) => {
        const pump = () => {
          while (!socket.destroyed && socket.write(lines));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      },
    });
    const started = Date.now();
    const outcomes = await deliver(await listen(server));
    expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
    expect(reason(outcomes[0])).toMatch(/: greeting: a reply longer than 65536 octets$/);
    expect(Date.now() - started).toBeLessThan(SHORT.totalMs! / 2);
  });

  it('replies nobody asked for, sent while the message goes out, are not read until the end of the message', async () => {
    // The server floods 250s from the moment it says 354, and the message
    // takes two seconds to come out of the queue. Were every reply read as it
    // came, the agent would hold hundreds of megabytes by then; read only
    // when asked, the server can write no more than the sockets' buffers take.
    let flushed = 0;
    const { server } = fakeServer({
      onLine: (line, socket) => {
        if (line !== 'DATA') return false;
        socket.write('354 go ahead\r\n');
        const replies = '250 2.0.0 Ok\r\n'.repeat(4096);
        const pump = () => {
          while (!socket.destroyed && socket.write(replies)) flushed += replies.length;
          if (!socket.destroyed) socket.once('drain', () => ((flushed += replies.length), pump()));
        };
        pump();
        return true;
      },
    });
    async function* slowly() {
      yield Buffer.from('Subject: slow\r\n\r\n');
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        yield Buffer.from(`line ${i}\r\n`);
      }
    }
    await deliver(await listen(server), slowly());
    expect(flushed).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('an LMTP server that stops during the message', () => {
  const big = `Subject: big\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(20_000)}`;

  it('one that stops reading after 354 is given up when it has taken nothing for the reply time, and the reason says so', async () => {
    const { server } = fakeServer({
      onLine: (line, socket) => {
        if (line !== 'DATA') return false;
        socket.write('354 go ahead\r\n');
        socket.pause();
        return true;
      },
    });
    const outcomes = await deliver(await listen(server), content(big, 65536), { ...SHORT, replyMs: 300 });
    expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
    expect(reason(outcomes[0])).toMatch(/: message: the server took no data for 300 ms$/);
  });

  it('one that hangs up halfway through the message: tried again at once, not at a time limit', async () => {
    const { server } = fakeServer({
      onLine: (line, socket) => {
        if (line !== 'DATA') return false;
        socket.write('354 go ahead\r\n');
        socket.once('data', () => socket.destroy());
        return true;
      },
    });
    const started = Date.now();
    const outcomes = await deliver(await listen(server), content(big, 65536));
    expect(results(outcomes)).toEqual(['tempfail', 'tempfail', 'tempfail']);
    expect(reason(outcomes[0])).toMatch(/: message: (read ECONNRESET|write EPIPE|connection closed.*)$/);
    expect(Date.now() - started).toBeLessThan(SHORT.replyMs!);
  });
});

describe('the message on the wire', () => {
  it('a line of one dot, last and without a line end, is stuffed and ended before the final dot', async () => {
    const { server, seen } = fakeServer();
    const outcomes = await deliver(await listen(server), 'Subject: dots\r\n\r\n.\r\n..\r\n.x\r\nx.\r\n.', SHORT, ['dave@example.net']);
    expect(results(outcomes)).toEqual(['ok']);
    expect(seen.data).toEqual(['Subject: dots\r\n\r\n..\r\n...\r\n..x\r\nx.\r\n..\r\n']);
  });
});
