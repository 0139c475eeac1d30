import { describe, expect, it } from 'vitest';
import { codes, ehloClient, RawClient, startServer } from './helpers.ts';

/** Writes `text` one octet per write, each after the last has gone out, as a slow or hostile client might. */
async function sendBytewise(c: RawClient, text: string): Promise<void> {
  c.socket.setNoDelay(true);
  for (const octet of Buffer.from(text, 'latin1')) {
    if (c.ended) return;
    await new Promise<void>((resolve) => c.socket.write(Buffer.of(octet), () => resolve()));
  }
}

async function transaction(c: RawClient, rcpts = ['bob@example.org']): Promise<void> {
  expect(await c.command('MAIL FROM:<alice@example.com>')).toBe('250 2.0.0 Ok');
  for (const r of rcpts) expect(await c.command(`RCPT TO:<${r}>`)).toMatch(/^250 /);
  expect(await c.command('DATA')).toMatch(/^354 /);
}

describe('long lines', () => {
  it('answers 500 to a command line over 512 octets and goes on', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command(`NOOP ${'x'.repeat(505)}`)).toBe('250 2.0.0 Ok'); // 510 + CRLF = 512
    expect(await c.command(`NOOP ${'x'.repeat(506)}`)).toBe('500 5.5.2 Line too long');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
  });

  it('gives MAIL and RCPT the room their extensions add', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    const envid = 'e'.repeat(100);
    expect(await c.command(`MAIL FROM:<${'a'.repeat(60)}@example.com> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=${envid} AUTH=<>`)).toBe('250 2.0.0 Ok');
    expect(await c.command(`RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;${'b'.repeat(400)}@example.org`)).toMatch(/^250 /);
    expect(await c.command(`RCPT TO:<bob@example.org> ORCPT=rfc822;${'b'.repeat(1000)}@example.org`)).toBe('500 5.5.2 Line too long');
  });

  it('closes the session when a line never ends', async () => {
    const { port, logs } = await startServer();
    const c = await ehloClient(port);
    c.send('NOOP '.padEnd(20000, 'x'));
    expect(await c.reply()).toBe('500 5.5.2 Line too long');
    expect(await c.closed()).toBe(true);
    expect(logs.some((l) => l.endsWith('smtp bad-input result="500 5.5.2 Line too long"'))).toBe(true);
  });

  for (const [how, send] of [
    ['in one write', async (c: RawClient, text: string) => c.send(text)],
    ['one octet at a time', sendBytewise],
  ] as const) {
    it(`closes the session at a line over 12,288 octets, ended or not, sent ${how}`, async () => {
      const { port } = await startServer();
      for (const line of [`NOOP ${'x'.repeat(20000)}\r\n`, `NOOP ${'x'.repeat(12282)}\r\n`]) {
        const c = await ehloClient(port);
        await send(c, line);
        expect(await c.reply()).toBe('500 5.5.2 Line too long');
        expect(await c.closed()).toBe(true);
      }
    });

    it(`answers 500 to a line over its command's limit and goes on, sent ${how}`, async () => {
      const { port } = await startServer();
      const c = await ehloClient(port);
      await send(c, `NOOP ${'x'.repeat(600)}\r\nNOOP ${'x'.repeat(12281)}\r\n`);
      expect(await c.reply()).toBe('500 5.5.2 Line too long'); // 607 octets, over 512
      expect(await c.reply()).toBe('500 5.5.2 Line too long'); // 12,288 octets: the longest line read at all
      expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
    });
  }
});

describe('characters that have no place in a command', () => {
  it('refuses NUL and invalid UTF-8, and goes on', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('NO\0OP')).toBe('500 5.5.2 Syntax error: NUL character in command');
    expect(await c.command('MAIL FROM:<a\0b@example.com>')).toBe('500 5.5.2 Syntax error: NUL character in command');
    c.send(Buffer.from([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0xfe, 0x0d, 0x0a]));
    expect(await c.reply()).toBe('500 5.5.2 Syntax error: invalid UTF-8 in command');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
  });
});

describe('clients that do not wait', () => {
  it('answers 554 to a client that talks before the greeting, and closes', async () => {
    const slow = async () => {
      await new Promise((r) => setTimeout(r, 300));
      return { decision: 'proceed' } as const;
    };
    const { port } = await startServer({ hooks: { connect: [slow] } });
    const c = await RawClient.connect(port);
    c.send('EHLO spammer.test\r\n');
    expect(await c.reply()).toBe('554 5.5.1 Invalid command: Talked before the greeting');
    expect(await c.closed()).toBe(true);
  });

  it('refuses input after a command that must end a batch, before running it', async () => {
    const { port } = await startServer();
    for (const batch of ['EHLO x\r\nMAIL FROM:<a@b.c>\r\n', 'NOOP\r\nNOOP\r\n']) {
      const c = await RawClient.connect(port);
      await c.reply();
      if (!batch.startsWith('EHLO')) await c.command('EHLO x');
      c.send(batch);
      expect(await c.reply()).toBe(`500 5.5.1 Invalid command: Pipelining not allowed after ${batch.slice(0, 4)}`);
      expect(await c.closed()).toBe(true);
    }
  });

  it('refuses content sent with DATA before the 354', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    c.send('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n');
    expect(codes([await c.reply(), await c.reply(), await c.reply()])).toEqual([250, 250, 500]);
    expect(await c.closed()).toBe(true);
    expect(store.messages).toHaveLength(0);
  });

  it('does not let a HELO client pipeline', async () => {
    const { port } = await startServer();
    const c = await RawClient.connect(port);
    await c.reply();
    await c.command('HELO x');
    c.send('MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n');
    expect(await c.reply()).toBe('500 5.5.1 Invalid command: Pipelining not allowed after MAIL');
  });

  it('lets a QUIT follow the final dot in the same packet', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await transaction(c);
    c.send('Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n');
    expect(codes([await c.reply(), await c.reply()])).toEqual([250, 221]);
    expect(store.committed()).toHaveLength(1);
  });
});

describe('addresses and parameters', () => {
  it('says what is wrong with a path', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:alice@example.com')).toBe("501 5.1.7 Sender address syntax error: address must be enclosed in '<' and '>'");
    expect(await c.command('MAIL TO:<alice@example.com>')).toBe('501 5.5.4 Invalid command arguments: expected MAIL FROM:<address>');
    expect(await c.command('MAIL FROM: <alice@example.com>')).toBe('250 2.0.0 Ok');
    expect(await c.command('RCPT TO:<>')).toBe('501 5.1.3 Recipient address syntax error: empty address');
    expect(await c.command('RCPT TO:<bob@@example.org>')).toBe('501 5.1.3 Recipient address syntax error: empty domain');
    expect(await c.command('RCPT TO:<"bob smith"@example.org>')).toMatch(/^250 /);
    expect(await c.command('RCPT TO:<postmaster>')).toMatch(/^250 /);
  });

  it('refuses parameters it does not know with 555', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.com> FOO=1')).toBe('555 5.5.4 Invalid command arguments: Unsupported option FOO=1');
    expect(await c.command('MAIL FROM:<a@example.com> BODY=BINARYMIME')).toBe('555 5.5.4 Invalid command arguments: Unsupported option BODY=BINARYMIME');
    await c.command('MAIL FROM:<a@example.com>');
    expect(await c.command('RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS')).toBe('501 5.5.4 Invalid command arguments: NOTIFY option NEVER cannot be combined with other options');
    expect(await c.command('RCPT TO:<b@example.org> NOTIFY=SOMETIMES')).toBe('501 5.5.4 Invalid command arguments: invalid NOTIFY=SOMETIMES');
  });

  it('refuses a parameter it knows, with a value it cannot take, as a syntax error (501, not 555)', async () => {
    const { port } = await startServer();
    const c = await ehloClient(port);
    for (const param of ['RET=junk', 'RET', 'BODY=junk', 'BODY', 'SIZE', 'SMTPUTF8=yes', 'ENVID', 'AUTH']) {
      expect(await c.command(`MAIL FROM:<a@example.com> ${param}`)).toBe(`501 5.5.4 Invalid command arguments: invalid ${param}`);
    }
    await c.command('MAIL FROM:<a@example.com>');
    for (const param of ['NOTIFY', 'ORCPT']) {
      expect(await c.command(`RCPT TO:<b@example.org> ${param}`)).toBe(`501 5.5.4 Invalid command arguments: invalid ${param}`);
    }
    // A MAIL parameter on RCPT is not one RCPT knows.
    expect(await c.command('RCPT TO:<b@example.org> RET=FULL')).toBe('555 5.5.4 Invalid command arguments: Unsupported option RET=FULL');
  });

  it('keeps DSN requests in the envelopes, and refuses them where DSN is off', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ+2B314');
    await c.command('RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.org');
    await c.command('RCPT TO:<c@example.org>');
    await c.command('DATA');
    await c.command('Subject: dsn\r\n\r\n.');
    const [first, second] = store.committed()[0]!.envelopes;
    expect(first!.dsn).toEqual({ notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;b+x@example.org', ret: 'HDRS', envid: 'QQ+314' });
    expect(second!.dsn).toEqual({ ret: 'HDRS', envid: 'QQ+314' });

    const noDsn = await startServer({ listener: { dsn: false } });
    const d = await ehloClient(noDsn.port);
    expect(await d.command('MAIL FROM:<a@example.com> RET=FULL')).toBe('555 5.5.4 Invalid command arguments: Unsupported option RET=FULL');
  });

  it('wants SMTPUTF8 for a non-ASCII address (RFC 6531)', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<jöran@example.com>')).toBe('553 5.6.7 Non-ASCII address requires SMTPUTF8');
    expect(await c.command('MAIL FROM:<jöran@example.com> SMTPUTF8')).toBe('250 2.0.0 Ok');
    expect(await c.command('RCPT TO:<åsa@exämple.org>')).toMatch(/^250 /);
    await c.command('DATA');
    await c.command('Subject: hej\r\n\r\n.');
    const [m] = store.committed();
    expect(m!.envelopes[0]!.recipient).toEqual({ user: 'åsa', domain: 'exämple.org' });
    expect(m!.text).toMatch(/with UTF8SMTP id/);
  });
});

describe('limits', () => {
  it('answers 452 past max-rcpt', async () => {
    const { port } = await startServer({ limits: { maxRecipients: 2 } });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    expect(codes([await c.command('RCPT TO:<b@x.org>'), await c.command('RCPT TO:<c@x.org>')])).toEqual([250, 250]);
    expect(await c.command('RCPT TO:<d@x.org>')).toBe('452 4.5.3 Too many recipients: Too many recipients');
  });

  it('refuses a declared SIZE over the limit at MAIL (RFC 1870)', async () => {
    const { port } = await startServer({ limits: { maxMessageSize: 1000 } });
    const c = await ehloClient(port);
    expect((await c.command('EHLO x')).split('\n')).toContain('250-SIZE 1000');
    expect(await c.command('MAIL FROM:<a@example.com> SIZE=1001')).toBe('552 5.3.4 Message too big for system: Message size exceeds fixed maximum message size');
    expect(await c.command('MAIL FROM:<a@example.com> SIZE=ten')).toBe('501 5.5.4 Invalid command arguments: invalid SIZE=ten');
    expect(await c.command('MAIL FROM:<a@example.com> SIZE=1000')).toBe('250 2.0.0 Ok');
  });

  it('refuses a message over max-message-size at the end of DATA, without storing the excess', async () => {
    const { port, store } = await startServer({ limits: { maxMessageSize: 1000 } });
    const c = await ehloClient(port);
    await transaction(c);
    for (let i = 0; i < 50; i++) c.send(`${'x'.repeat(98)}\r\n`);
    expect(await c.command('.')).toBe('552 5.3.4 Message too big for system: Transaction failed, message too big');
    const [m] = store.messages;
    expect(m!.state).toBe('aborted');
    expect(Buffer.concat(m!.chunks).length).toBeLessThan(1000 + 300);
    await transaction(c);
    expect(await c.command('small\r\n.')).toMatch(/^250 /);
  });

  it('accepts a message of exactly max-message-size', async () => {
    const { port } = await startServer({ limits: { maxMessageSize: 1000 } });
    const c = await ehloClient(port);
    await transaction(c);
    for (let i = 0; i < 10; i++) c.send(`${'x'.repeat(98)}\r\n`);
    expect(await c.command('.')).toMatch(/^250 /);
  });

  it('refuses NUL in the message and a mail loop', async () => {
    const { port, store } = await startServer();
    const c = await ehloClient(port);
    await transaction(c);
    expect(await c.command('Subject: x\r\n\r\nnul \0 here\r\n.')).toBe('554 5.6.0 Other/Undefined media error: Message contains NUL characters');
    await transaction(c);
    expect(await c.command(`${'Received: from a by b\r\n'.repeat(100)}\r\nbody\r\n.`)).toBe('554 5.4.6 Routing loop detected: Loop detected');
    await transaction(c);
    expect(await c.command(`${'Received: from a by b\r\n'.repeat(99)}\r\nbody\r\n.`)).toMatch(/^250 /);
    expect(store.messages.map((m) => m.state)).toEqual(['aborted', 'aborted', 'committed']);
  });

  // Found by impl/fuzz/smtp.ts: the reply depended on where TCP cut the message.
  for (const [how, send] of [
    ['in one write', async (c: RawClient, text: string) => c.send(text)],
    ['one octet at a time', sendBytewise],
  ] as const) {
    it(`answers a message with NUL that is also too big for the first of the two problems, sent ${how}`, async () => {
      const { port } = await startServer({ limits: { maxMessageSize: 20 } });
      const c = await ehloClient(port);
      await transaction(c);
      await send(c, `nul \0 here\r\n${'x'.repeat(100)}\r\n.\r\n`);
      expect(await c.reply()).toBe('554 5.6.0 Other/Undefined media error: Message contains NUL characters');
      await transaction(c);
      await send(c, `${'x'.repeat(100)}\r\nnul \0 here\r\n.\r\n`);
      expect(await c.reply()).toBe('552 5.3.4 Message too big for system: Transaction failed, message too big');
    });

    it(`answers a mail loop with NUL after the loop's Received: fields for the loop, sent ${how}`, async () => {
      const { port } = await startServer();
      const c = await ehloClient(port);
      await transaction(c);
      await send(c, `${'Received: from a by b\r\n'.repeat(100)}\r\nnul \0 here\r\n.\r\n`);
      expect(await c.reply()).toBe('554 5.4.6 Routing loop detected: Loop detected');
    });
  }
});

describe('SMTP smuggling', () => {
  it('logs how many lines of a message ended with a bare LF, once, at its end, whatever becomes of it', async () => {
    const { port, logs } = await startServer({ limits: { maxMessageSize: 1000 } });
    const c = await ehloClient(port);
    await transaction(c);
    c.send('Subject: bare\n\r\nfirst\nsecond\r\n');
    c.send('third\n\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    await transaction(c);
    expect(await c.command('Subject: clean\r\n\r\nbody\r\n.')).toMatch(/^250 /);
    await transaction(c);
    expect(await c.command(`big\n${'x'.repeat(1000)}\r\n.`)).toMatch(/^552 /);
    const bareLf = logs.filter((l) => / smtp bare-lf /.test(l)).map((l) => l.replace(/^[0-9a-f]{16} /, ''));
    expect(bareLf).toEqual(['smtp bare-lf msgid=1a2b3c00 count=3', 'smtp bare-lf msgid=1a2b3c02 count=1']);
    expect(logs.findIndex((l) => l.includes('bare-lf msgid=1a2b3c00'))).toBeLessThan(logs.findIndex((l) => l.includes('message msgid=1a2b3c00')));
  });

  for (const [name, eol] of [['LF', '\n'], ['CR', '\r'], ['LF then CRLF', '\n.\r\n'], ['CRLF then LF', '\r\n.\n']] as const) {
    it(`does not end DATA at ${name}`, async () => {
      const { port, store } = await startServer();
      const c = await ehloClient(port);
      await transaction(c);
      const smuggled = eol.length === 1 ? `${eol}.${eol}` : eol;
      c.send(`Subject: first\r\n\r\nbody${smuggled}MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nFrom: ceo@example.org\r\n\r\nwire money\r\n.\r\nNOOP\r\n`);
      expect(codes([await c.reply(), await c.reply()])).toEqual([250, 250]);
      expect(store.committed()).toHaveLength(1);
      const text = store.committed()[0]!.text;
      expect(text).toContain('MAIL FROM:<evil@example.com>\r\n');
      expect(text).not.toMatch(/(^|[^\r])\n/);
    });
  }
});
