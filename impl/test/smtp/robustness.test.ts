/**
 * What a hostile or unlucky client found (a fuzzing session against the
 * daemon), each kept as a test: input that arrives while the engine waits
 * for the queue, a client that never reads, a client that leaves at the
 * wrong moment, and bytes that must not come back in a reply.
 */
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from '../../src/queue/backend.ts';
import { createSmtpServer } from '../../src/smtp/index.ts';
import { ehloClient, memoryQueue, RawClient, startServer } from './helpers.ts';

/** A memory queue whose writes take `ms` each, as a busy disk does. */
function slowQueue(ms: number) {
  const store = memoryQueue();
  const queue = {
    async createMessage(): Promise<IncomingMessage> {
      const message = await store.queue.createMessage();
      return { ...message, id: message.id, write: async (chunk) => { await sleep(ms); return message.write(chunk); } };
    },
  };
  return { store, queue };
}

describe('input that arrives while the engine waits', () => {
  it('reads the end of a message that came in while a write to the queue was under way', async () => {
    const { store, queue } = slowQueue(30);
    const { port } = await startServer({ queue });
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<b@example.org>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.send(`Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(300)); // 300 KB: more than the engine buffers
    await sleep(5); // the engine is now waiting for the queue's write
    c.send('last line\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 2\.0\.0 /);
    expect(store.committed()).toHaveLength(1);
  });
});

describe('a client that sends and never reads', () => {
  it('is read no further once its unread replies pile up, so they cannot fill the memory', { timeout: 30_000 }, async () => {
    const { store } = slowQueue(0);
    const smtp = createSmtpServer({ hostname: 'mx.test', queue: store.queue });
    const server = createServer();
    const accepted: Socket[] = [];
    server.on('connection', (socket) => accepted.push(socket));
    smtp.listen(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await ehloClient((server.address() as AddressInfo).port);
      c.socket.pause(); // from now on the client reads nothing: its replies fill the kernel's buffers, then the server's
      const batch = 'HELP\r\n'.repeat(20_000); // 120 KB of commands, over 1 MB of replies
      for (let i = 0; i < 100; i++) c.socket.write(batch); // 12 MB in all
      await sleep(1500);
      // What the server holds for the client stays small; unbounded, it would be over 100 MB by now.
      const held = accepted[0]!.writableLength;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThan(1024 * 1024);
      // It reads on when the client takes its replies: the session is alive, and answers in order.
      c.socket.resume();
      c.socket.write('NOOP\r\n');
      const deadline = Date.now() + 20_000;
      let last = '';
      while (Date.now() < deadline && !last.includes('250 2.0.0 Ok')) last = (await c.reply()).slice(-40);
      expect(last).toContain('250 2.0.0 Ok');
    } finally {
      await smtp.close();
    }
  });
});

describe('a client that leaves at the wrong moment', () => {
  it('leaves no message behind when it goes while DATA waits for the queue to make one', async () => {
    const store = memoryQueue();
    const queue = {
      async createMessage(): Promise<IncomingMessage> {
        await sleep(100); // a queue that takes its time
        return store.queue.createMessage();
      },
    };
    const { port } = await startServer({ queue });
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<b@example.org>')).toMatch(/^250/);
    c.send('DATA\r\n');
    await sleep(20);
    c.socket.resetAndDestroy();
    await sleep(300);
    expect(store.messages.map((m) => m.state)).toEqual(['aborted']);
  });
});

describe('what the queue would refuse is refused when the client says it', () => {
  it('refuses control characters in ENVID and ORCPT, an ORCPT over 500 characters, and an IPv6 zone in a literal', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('EHLO [IPv6:fe80::1%eth0]')).toBe('501 5.5.4 Invalid command arguments: Invalid domain name');
    expect(await c.command('MAIL FROM:<a@[IPv6:fe80::1%eth0]>')).toMatch(/^501 5\.1\.7 .*invalid address literal/);
    expect(await c.command('MAIL FROM:<a@example.org> ENVID=+0A')).toMatch(/^501 5\.5\.4 .*invalid ENVID=\+0A/);
    expect(await c.command('MAIL FROM:<a@example.org> ENVID=ok+2Bfine')).toBe('250 2.0.0 Ok');
    expect(await c.command('RCPT TO:<b@example.org> ORCPT=rfc822;b+0A@example.org')).toMatch(/^501 5\.5\.4 .*ORCPT address syntax error/);
    expect(await c.command(`RCPT TO:<b@example.org> ORCPT=rfc822;${'b'.repeat(500)}@example.org`)).toMatch(/^501 /);
    expect(await c.command('RCPT TO:<b@example.org> ORCPT=rfc822;b@example.org')).toMatch(/^250 /);
  });
});

describe('replies that quote the client', () => {
  it('carry only printable ASCII: its control and 8-bit bytes come back as ?', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    const replies = [
      await c.command('MAIL FROM:<a@b\x01>'),
      await c.command('MAIL FROM:<a@example.org> FOO=é'),
      await c.command('MAIL FROM:<a@example.org> \x7f=1'),
    ];
    for (const reply of replies) expect(reply).toMatch(/^5\d\d [\t\x20-\x7e]*$/);
    expect(replies[0]).toContain("unexpected '?'");
    expect(replies[1]).toContain('FOO=?');
  });
});

describe('verbs and keywords', () => {
  it('are ASCII: a letter that only looks like one, or that Unicode capitalizes into one, is not taken', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('MAıL FROM:<a@example.org>')).toMatch(/^500 /); // ı, the dotless i, capitalizes to I
    expect(await c.command('MAIL FROM:<a@example.org> ſIZE=10')).toMatch(/^501 /); // ſ, the long s, capitalizes to S
    expect(await c.command('mail from:<a@example.org> size=10')).toBe('250 2.0.0 Ok');
  });
});

describe('a message for more envelopes than the queue takes in one commit', () => {
  it('is refused at the RCPT that would go over, counting what aliases expand to, whatever max-rcpt says', async () => {
    const expanded = (n: number) => Array.from({ length: n }, (_, i) => ({ address: { user: `m${i}`, domain: 'example.org' }, dispatcher: 'local' }));
    const { port } = await startServer({
      limits: { maxRecipients: 5000, maxEnvelopes: 10 },
      hooks: { 'rcpt-to': [({ param }) => ({ decision: 'accept', dispatcher: 'local', ...(param.startsWith('list@') && { expanded: expanded(8) }) })] },
    });
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<list@example.org>')).toMatch(/^250/); // 8 envelopes
    expect(await c.command('RCPT TO:<one@example.org>')).toMatch(/^250/); // 9
    expect(await c.command('RCPT TO:<two@example.org>')).toMatch(/^250/); // 10
    expect(await c.command('RCPT TO:<three@example.org>')).toBe('452 4.5.3 Too many recipients: Too many recipients');
    expect(await c.command('DATA')).toMatch(/^354/);
    expect(await c.command('Subject: x\r\n\r\nx\r\n.')).toMatch(/^250 /);
  });
});
