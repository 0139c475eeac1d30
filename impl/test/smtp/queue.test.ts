import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createSmtpServer, limitsFromConfig, listenerFromDecl } from '../../src/smtp/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { ehloClient, memoryQueue, RawClient, startServer } from './helpers.ts';

async function send(c: RawClient, content: string, rcpts = ['bob@example.org']): Promise<string> {
  await c.command('MAIL FROM:<alice@example.com>');
  for (const r of rcpts) await c.command(`RCPT TO:<${r}>`);
  await c.command('DATA');
  return c.command(`${content}\r\n.`);
}

describe('the Received: field', () => {
  it('names the recipient only when there is one, and hides the client with mask-src', async () => {
    const { port, store } = await startServer({
      resolveName: async () => 'client.example.net',
      now: () => new Date(Date.UTC(2021, 0, 5, 8, 9, 10)),
    });
    const c = await ehloClient(port, 'helo.example.net');
    await send(c, 'Subject: one', ['bob@example.org', 'carol@example.org']);
    const text = store.committed()[0]!.text;
    expect(text.slice(0, text.indexOf('Subject'))).toMatch(
      /^Received: from helo\.example\.net \(client\.example\.net \[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Store and Forward\) with ESMTP id 1a2b3c00;\r\n\t\w{3}, \d+ Jan 2021 \d\d:09:10 [+-]\d{4} \(.+\)\r\n$/,
    );
    expect(store.committed()[0]!.envelopes[0]!.origin.clientName).toBe('client.example.net');

    const masked = await startServer({ listener: { maskSource: true } });
    const d = await ehloClient(masked.port);
    await send(d, 'Subject: two');
    expect(masked.store.committed()[0]!.text).toMatch(/^Received: by mx\.test \(Store and Forward\) with ESMTP id [0-9a-f]{8}\r\n\tfor <bob@example\.org>;\r\n/);
  });

  it('says SMTP after HELO', async () => {
    const { port, store } = await startServer();
    const c = await RawClient.connect(port);
    await c.reply();
    await c.command('HELO old.test');
    await send(c, 'x');
    expect(store.committed()[0]!.text).toContain(' with SMTP id ');
  });
});

describe('a submission listener', () => {
  it('adds Date: and Message-ID: when missing, before the blank line', async () => {
    const { port, store } = await startServer({ listener: { submission: true } });
    const c = await ehloClient(port);
    await send(c, 'Subject: no date\r\n\r\nbody');
    await send(c, 'Subject: dated\r\nDate: Tue, 1 Dec 2020 10:00:00 +0000\r\nMessage-Id: <x@y>\r\n\r\nbody');
    await send(c, 'Subject: only headers');
    const [first, second, third] = store.committed().map((m) => m.text.slice(m.text.indexOf('Subject')));
    expect(first).toMatch(/^Subject: no date\r\nDate: \w{3}, .+\r\nMessage-ID: <[0-9a-f]{16}@mx\.test>\r\n\r\nbody\r\n$/);
    expect(second).toBe('Subject: dated\r\nDate: Tue, 1 Dec 2020 10:00:00 +0000\r\nMessage-Id: <x@y>\r\n\r\nbody\r\n');
    expect(third).toMatch(/^Subject: only headers\r\nDate: .+\r\nMessage-ID: <.+>\r\n$/);
  });

  it('is left alone elsewhere', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await send(c, 'Subject: no date\r\n\r\nbody');
    expect(store.committed()[0]!.text).not.toContain('Message-ID');
  });
});

describe('the queue', () => {
  it('gets the content as it arrives, not all at the end', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    const line = `${'y'.repeat(998)}\r\n`;
    for (let i = 0; i < 1000; i++) c.send(line);
    await new Promise((r) => setTimeout(r, 300));
    const [m] = store.messages;
    expect(m!.state).toBe('open');
    expect(m!.chunks.length).toBeGreaterThan(2);
    expect(Buffer.concat(m!.chunks).length).toBeGreaterThan(900_000);
    expect(await c.command('.')).toMatch(/^250 /);
    expect(m!.state).toBe('committed');
  });

  it('gets the Received: field with the first content, not in a write of its own; an empty message gets it alone', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await send(c, 'Subject: one write');
    const [first] = store.messages;
    expect(first!.chunks).toHaveLength(1);
    expect(first!.chunks[0]!.toString()).toMatch(/^Received: [^]*\r\nSubject: one write\r\n$/);
    await c.command('MAIL FROM:<alice@example.com>');
    await c.command('RCPT TO:<bob@example.org>');
    await c.command('DATA');
    expect(await c.command('.')).toMatch(/^250 /);
    expect(store.committed()[1]!.text).toMatch(/^Received: [^]*;\r\n\t[^\r\n]+\r\n$/);
  });

  it('answers 421 and closes when the commit fails, and when no message can be created', async () => {
    const { port, store } = await startServer();
    store.control.failCommit = true;
    const c = await ehloClient(port);
    expect(await send(c, 'x')).toBe('421 4.3.0 Temporary failure');
    expect(await c.closed()).toBe(true);
    expect(store.messages[0]!.state).toBe('aborted');
    store.control.failCreate = true;
    const d = await ehloClient(port);
    await d.command('MAIL FROM:<a@example.com>');
    await d.command('RCPT TO:<b@example.org>');
    expect(await d.command('DATA')).toBe('421 4.3.0 Temporary Error');
    expect(await d.closed()).toBe(true);
  });

  it('drops the message of a client that goes away during DATA', async () => {
    const { port, store, logs } = await startServer();
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    c.send('Subject: half\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(store.messages[0]!.state).toBe('aborted');
    expect(logs.at(-1)).toMatch(/smtp disconnected reason=disconnect$/);
  });
});

describe('the server', () => {
  it('serves sockets from a server it did not create, and closes gracefully', async () => {
    const store = memoryQueue();
    const smtp = createSmtpServer({ hostname: 'mx.test', queue: store.queue });
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    server.on('connection', (socket) => void smtp.handle(socket));
    const idle = await ehloClient(port);
    const busy = await ehloClient(port);
    await busy.command('MAIL FROM:<a@example.com>');
    await busy.command('RCPT TO:<b@example.org>');
    expect(smtp.sessions).toBe(2);
    let closed = false;
    const closing = smtp.close().then(() => (closed = true));
    expect(await idle.reply()).toBe('421 4.3.2 mx.test Service shutting down, closing channel');
    expect(await idle.closed()).toBe(true);
    expect(closed).toBe(false);
    await busy.command('DATA');
    expect(await busy.command('x\r\n.')).toMatch(/^250 /);
    expect(await busy.reply()).toBe('421 4.3.2 mx.test Service shutting down, closing channel');
    await closing;
    expect(closed).toBe(true);
    expect(smtp.sessions).toBe(0);
    server.close();
  });
});

describe('shutting down', () => {
  it('logs the 421 as the way the session ended, not as a failed command', async () => {
    const { port, smtp, logs } = await startServer();
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    const closing = smtp.close();
    expect(await c.command('x\r\n.')).toMatch(/^250 /);
    expect(await c.reply()).toBe('421 4.3.2 mx.test Service shutting down, closing channel');
    await closing;
    expect(logs.filter((l) => l.includes('failed-command'))).toEqual([]);
    expect(logs.at(-1)).toMatch(/smtp disconnected reason=shutdown$/);
  });

  it('closes, at the deadline, a connection whose client holds its end open after the 421', async () => {
    const { port, smtp } = await startServer();
    const c = await RawClient.connect(port, { allowHalfOpen: true });
    await c.reply();
    await c.command('EHLO client.test');
    const started = Date.now();
    await smtp.close(300);
    expect(await c.reply()).toBe('421 4.3.2 mx.test Service shutting down, closing channel');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(smtp.sessions).toBe(0);
  });
});

describe('too many sessions', () => {
  it('answers a connection over the budget 421 and closes it, logs it once, and takes the next one when a session ends', async () => {
    const sessions = { max: 2, open: 0 };
    const { port, logs } = await startServer({ sessions });
    const first = await ehloClient(port);
    await ehloClient(port);
    expect(sessions.open).toBe(2);
    const over = await RawClient.connect(port);
    expect(await over.reply()).toBe('421 4.3.2 mx.test Too many sessions, try again later');
    expect(await over.closed()).toBe(true);
    const again = await RawClient.connect(port);
    expect(await again.reply()).toMatch(/^421 4\.3\.2 /);
    expect(logs.filter((l) => l.includes('sessions open'))).toEqual([
      'warn: warn: smtp: 2 sessions open, the most allowed: refused 1 connection(s) with 421, the last from 127.0.0.1; raise the descriptor limit (ulimit -n) to allow more',
    ]);
    expect(await first.command('QUIT')).toMatch(/^221 /);
    await first.closed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sessions.open).toBe(1);
    const next = await RawClient.connect(port);
    expect(await next.reply()).toMatch(/^220 /);
  });
});

describe('settings from smtpd.conf', () => {
  it('maps a listen line and the smtp limits', () => {
    const { config, errors } = parseConfig(
      'smtp max-message-size 10M\nsmtp limit max-rcpt 50 max-mails 7\n' +
      'pki mx.test cert "/etc/ssl/mx.crt"\npki mx.test key "/etc/ssl/mx.key"\n' +
      'listen on lo port 587 tls-require pki mx.test auth tag SUBMIT mask-src\n' +
      'action "local" mbox\nmatch from local for local action "local"\n',
      { file: 'smtpd.conf' },
    );
    expect(errors).toEqual([]);
    expect(listenerFromDecl(config.listeners[0]!)).toEqual({
      submission: true, maskSource: true, receivedAuth: false, dsn: true, tls: 'tls-require', auth: 'required', tag: 'SUBMIT',
    });
    expect(limitsFromConfig(config)).toEqual({ maxMessageSize: 10 * 1024 * 1024, maxRecipients: 50, maxMessages: 7 });
  });
});
