import { describe, expect, it } from 'vitest';
import { codes, ehloClient, RawClient, startServer } from './helpers.ts';

describe('a plain session', () => {
  it('greets, answers EHLO with the extensions, and takes a message', async () => {
    const { port, store, logs } = await startServer();
    const c = await RawClient.connect(port);
    expect(await c.reply()).toBe('220 mx.test ESMTP Store and Forward');
    expect((await c.command('EHLO client.test')).split('\n')).toEqual([
      '250-mx.test Hello client.test [127.0.0.1], pleased to meet you',
      '250-8BITMIME',
      '250-ENHANCEDSTATUSCODES',
      '250-SIZE 36700160',
      '250-DSN',
      '250-PIPELINING',
      '250-SMTPUTF8',
      '250 HELP',
    ]);
    expect(await c.command('MAIL FROM:<alice@example.com>')).toBe('250 2.0.0 Ok');
    expect(await c.command('RCPT TO:<bob@example.org>')).toBe('250 2.1.5 Destination address valid: Recipient ok');
    expect(await c.command('DATA')).toBe('354 Enter mail, end with "." on a line by itself');
    c.send('Subject: hi\r\n\r\nHello.\r\n.\r\n');
    expect(await c.reply()).toBe('250 2.0.0 1a2b3c00 Message accepted for delivery');
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye');
    expect(await c.closed()).toBe(true);

    const [m] = store.committed();
    expect(m!.text).toMatch(/^Received: from client\.test \(<unknown> \[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Store and Forward\) with ESMTP id 1a2b3c00\r\n\tfor <bob@example\.org>;\r\n\t\w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(.+\)\r\nSubject: hi\r\n\r\nHello\.\r\n$/);
    expect(m!.envelopes).toHaveLength(1);
    expect(m!.envelopes[0]).toMatchObject({
      sender: { user: 'alice', domain: 'example.com' },
      recipient: { user: 'bob', domain: 'example.org' },
      dispatcher: 'local',
      origin: { clientAddress: '127.0.0.1', helo: 'client.test' },
      attempts: 0,
    });
    await new Promise((r) => setTimeout(r, 20));
    const id = logs[0]!.slice(0, 16);
    expect(logs.map((l) => l.replace(id, 'ID'))).toEqual([
      'ID smtp connected address=127.0.0.1 host=<unknown>',
      'ID smtp message msgid=1a2b3c00 size=23 nrcpt=1 proto=ESMTP',
      'ID smtp envelope evpid=1a2b3c0000000001 from=<alice@example.com> to=<bob@example.org>',
      'ID smtp disconnected reason=quit',
    ]);
  });

  it('refuses commands out of order, as OpenSMTPD does, but takes RSET before HELO (RFC 5321 4.1.4)', async () => {
    const { port } = await startServer();
    const c = await RawClient.connect(port);
    await c.reply();
    const replies = [];
    for (const cmd of ['MAIL FROM:<a@b.c>', 'RCPT TO:<a@b.c>', 'DATA', 'RSET', 'HELO', 'HELO x', 'RCPT TO:<a@b.c>', 'DATA']) {
      replies.push(await c.command(cmd));
    }
    expect(replies).toEqual([
      '503 5.5.1 Invalid command: Command not allowed at this point.',
      '503 5.5.1 Invalid command: Command not allowed at this point.',
      '503 5.5.1 Invalid command: Command not allowed at this point.',
      '250 2.0.0 Reset state',
      '501 5.5.1 Invalid command: HELO requires domain name',
      '250 mx.test Hello x [127.0.0.1], pleased to meet you',
      '503 5.5.1 Invalid command: Command not allowed at this point.',
      '503 5.5.1 Invalid command: Command not allowed at this point.',
    ]);
    expect(await c.command('MAIL FROM:<a@b.c>')).toBe('250 2.0.0 Ok');
    expect(await c.command('DATA')).toBe('503 5.5.4 Invalid command arguments: No recipient specified');
    expect(await c.command('MAIL FROM:<a@b.c>')).toBe('503 5.5.1 Invalid command: Command not allowed at this point.');
    expect(await c.command('RSET')).toBe('250 2.0.0 Reset state');
    expect(await c.command('MAIL FROM:<a@b.c>')).toBe('250 2.0.0 Ok');
  });

  it('answers NOOP, HELP, VRFY, EXPN and unknown commands', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
    expect(await c.command('NOOP whatever')).toBe('250 2.0.0 Ok');
    expect(await c.command('HELP')).toBe('214-2.0.0 This is Store and Forward\n214 2.0.0 End of HELP info');
    expect(await c.command('VRFY root')).toBe('502 5.5.1 Invalid command: VRFY is disabled');
    expect(await c.command('EXPN staff')).toBe('502 5.5.1 Invalid command: EXPN is disabled');
    expect(await c.command('WIZ')).toBe('500 5.5.1 Invalid command: Command unrecognized');
    expect(await c.command('nul')).toBe('500 5.5.1 Invalid command: Command unrecognized');
    expect(await c.command('RSET now')).toBe('501 5.5.4 Invalid command arguments: command does not accept arguments.');
    expect(await c.command('QUIT now')).toBe('501 5.5.4 Invalid command arguments: command does not accept arguments.');
    expect(await c.command('quit')).toBe('221 2.0.0 Bye');
  });

  it('accepts a second EHLO and resets the transaction (RFC 5321 4.1.4)', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@b.c>');
    expect((await c.command('EHLO again.test')).split('\n')[0]).toBe('250-mx.test Hello again.test [127.0.0.1], pleased to meet you');
    expect(await c.command('RCPT TO:<x@y.z>')).toBe('503 5.5.1 Invalid command: Command not allowed at this point.');
  });

  it('refuses an invalid HELO name', async () => {
    const { port } = await startServer();
    const c = await RawClient.connect(port);
    await c.reply();
    expect(await c.command('EHLO not a name')).toBe('501 5.5.4 Invalid command arguments: Invalid domain name');
    expect(await c.command('EHLO')).toBe('501 5.5.1 Invalid command: EHLO requires domain name');
    expect((await c.command('EHLO [127.0.0.1]')).slice(0, 4)).toBe('250-');
  });

  it('takes several messages in one session and counts them for max-mails', async () => {
    const { port, store } = await startServer({ limits: { maxMessages: 2 } });
    const c = await ehloClient(port);
    for (let i = 0; i < 2; i++) {
      await c.command('MAIL FROM:<>');
      await c.command(`RCPT TO:<r${i}@example.org>`);
      await c.command('DATA');
      expect(await c.command(`Subject: ${i}\r\n\r\nbody\r\n.`)).toMatch(/^250 2\.0\.0 [0-9a-f]{8} Message accepted/);
    }
    expect(await c.command('MAIL FROM:<a@b.c>')).toBe('452 4.5.3 Too many recipients: Too many messages sent');
    expect(store.committed()).toHaveLength(2);
    expect(store.committed()[0]!.envelopes[0]!.sender).toBeNull();
  });

  it('closes a silent session after the timeout', async () => {
    const { port, logs } = await startServer({ limits: { timeoutMs: 200 } });
    const c = await RawClient.connect(port);
    await c.reply();
    expect(await c.closed(2000)).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(logs.at(-1)).toMatch(/smtp disconnected reason=timeout$/);
  });

  it('keeps the replies of a pipelined batch in order', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    c.send('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad>>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n');
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await c.reply());
    expect(codes(replies)).toEqual([250, 250, 501, 250, 354]);
    c.send('Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nMAIL FROM:<a@example.com>\r\nQUIT\r\n');
    expect(codes([await c.reply(), await c.reply(), await c.reply(), await c.reply()])).toEqual([250, 250, 250, 221]);
    expect(store.committed()[0]!.envelopes.map((e) => e.recipient.user)).toEqual(['b', 'c']);
  });
});
