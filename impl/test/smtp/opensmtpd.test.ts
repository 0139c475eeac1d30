/**
 * The engine and the real OpenSMTPD 6.8 (/usr/sbin/smtpd, started by
 * opensmtpd.ts), side by side: the same scripted session, one command at
 * a time, to both; every reply must be the same, except where this
 * engine departs from 6.8 on purpose, and those departures are listed
 * here with their reason. The departures that need a session of their
 * own (a limit, the timing of the greeting, a session that ends) are
 * cases of their own below, each giving the same input to both servers
 * and checking both answers, so that a change on either side fails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, startServer } from './helpers.ts';
import { SMALL_LIMITS, startReferences, unavailable as why, type References } from './opensmtpd.ts';

if (why && process.env.CI !== undefined) throw new Error(`OpenSMTPD comparison cannot run: ${why}`);
if (why) console.warn(`skipping the OpenSMTPD 6.8 comparison: ${why}`);

let references: References | undefined;
let smtpd: References['smtpd'];
let small: References['small'];
let dns: References['dns'];

beforeAll(async () => {
  if (why) return;
  references = await startReferences();
  ({ smtpd, small, dns } = references);
}, 20_000);

afterAll(async () => {
  await references?.stop();
});

/** A step of the script: what the client sends (without CRLF; `null` reads the greeting). */
type Step = string | null;

const NO_ARGUMENTS = '500 5.5.4 Invalid command arguments: command does not accept arguments.';

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
  rset: {
    opensmtpd: '503 5.5.1 Invalid command: Command not allowed at this point.',
    ours: '250 2.0.0 Reset state',
    why: 'RFC 5321 4.1.4: RSET may come before EHLO, and should not get 503',
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
  // Odd arguments (ODD_SCRIPT).
  'MAIL FROM:<a@example.com> SIZE=abc': {
    opensmtpd: '250 2.0.0 Ok', ours: '501 5.5.4 Invalid command arguments: invalid SIZE=abc', why: 'RFC 1870: SIZE is 1 to 20 digits',
  },
  'MAIL FROM:<a@example.com> RET=junk': {
    opensmtpd: '250 2.0.0 Ok', ours: '501 5.5.4 Invalid command arguments: invalid RET=junk', why: 'RFC 3461 4.3: RET is FULL or HDRS',
  },
  'MAIL FROM:<a@example.com> BODY=junk': {
    opensmtpd: '503 5.5.4 Invalid command arguments: Unsupported option BODY=junk',
    ours: '501 5.5.4 Invalid command arguments: invalid BODY=junk',
    why: 'RFC 5321 4.2.2: a known parameter with a bad value is a syntax error',
  },
  'MAIL FROM:<a@[::1]>': {
    opensmtpd: '250 2.0.0 Ok', ours: '501 5.1.7 Sender address syntax error: invalid address literal [::1]',
    why: 'RFC 5321 4.1.3: an IPv6 literal starts with IPv6:',
  },
  'MAIL FROM:<a@>': { opensmtpd: '250 2.0.0 Ok', ours: '501 5.1.7 Sender address syntax error: empty domain', why: 'RFC 5321 4.1.2: a domain is not empty' },
  'MAIL FROM:<"john doe"@example.com>': {
    opensmtpd: '553 5.1.0 Sender address syntax error', ours: '250 2.0.0 Ok', why: 'RFC 5321 4.1.2: a local part may be a quoted string',
  },
  'MAIL FROM:<jö@example.com>': {
    opensmtpd: '553 5.1.0 Sender address syntax error', ours: '553 5.6.7 Non-ASCII address requires SMTPUTF8',
    why: 'RFC 6531 3.6: SMTPUTF8 is offered, and a UTF-8 address without it has its own code',
  },
  'RCPT TO:<b@example.org> NOTIFY=junk': {
    opensmtpd: '250 2.1.5 Destination address valid: Recipient ok', ours: '501 5.5.4 Invalid command arguments: invalid NOTIFY=junk',
    why: 'RFC 3461 4.1: NOTIFY is NEVER, or SUCCESS, FAILURE, DELAY',
  },
  'RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS': {
    opensmtpd: '553 NOTIFY option NEVER cannot be combined with other options',
    ours: '501 5.5.4 Invalid command arguments: NOTIFY option NEVER cannot be combined with other options',
    why: 'RFC 3461 4.1: a syntax error is 501 (553 is for a mailbox name)',
  },
  'RCPT TO:<b@example.org> ORCPT=b@example.org': {
    opensmtpd: '250 2.1.5 Destination address valid: Recipient ok', ours: '501 5.5.4 Invalid command arguments: ORCPT address syntax error',
    why: 'RFC 3461 4.2: ORCPT is addr-type ; xtext',
  },
  'RCPT TO:<b@example.org> ORCPT=x400;b@example.org': {
    opensmtpd: '553 ORCPT address syntax error', ours: '250 2.1.5 Destination address valid: Recipient ok',
    why: 'RFC 3461 4.2: any registered address type, kept for the DSN, not only rfc822',
  },
  'RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;b@example.org': {
    opensmtpd: '553 NOTIFY option NEVER cannot be combined with other options', ours: '250 2.1.5 Destination address valid: Recipient ok',
    why: "6.8 keeps the NEVER of a refused RCPT in the transaction, and refuses the next RCPT's NOTIFY for it",
  },
  'HELP MAIL': {
    opensmtpd: NO_ARGUMENTS, ours: '214-2.0.0 This is OpenSMTPD|214 2.0.0 End of HELP info', why: 'RFC 5321 4.1.1.8: HELP takes an optional argument',
  },
  'QUIT now': { opensmtpd: NO_ARGUMENTS, ours: NO_ARGUMENTS.replace('500', '501'), why: 'as RSET' },
};

const SCRIPT: Step[] = [
  null, 'NOOP', 'rset', 'MAIL FROM:<alice@example.com>', 'HELO', 'EHLO not a name', 'EHLO client.test', 'HELP', 'VRFY joe',
  'FOO', 'NOOP now', 'RSET now', 'RCPT TO:<bob@example.org>', 'DATA', 'STARTTLS', 'AUTH PLAIN',
  'MAIL FROM:alice@example.com', 'MAIL FROM:<alice@example.com>', 'MAIL FROM:<alice@example.com>', 'RCPT TO:<>',
  'RCPT TO:<bob@example.org> FOO=1', 'RCPT TO:<bob@example.org>', 'RCPT TO:<postmaster>', 'DATA now', 'DATA',
  'Subject: compared\r\n\r\nHello.\r\n.', 'RSET', 'MAIL FROM:<alice@example.com> SIZE=999999999999', 'RSET',
  'EHLO again.test', 'QUIT',
];

/** Odd arguments and orders, one at a time (6.8 closes on pipelined input); a RSET after each MAIL that one side took. */
const ODD_SCRIPT: Step[] = [
  null, 'EHLO client.test', 'MAIL FROM:<a@example.com> SIZE=abc', 'RSET', 'MAIL FROM:<a@example.com> RET=junk', 'RSET',
  'MAIL FROM:<a@example.com> BODY=junk', 'MAIL FROM:<a@[::1]>', 'RSET', 'MAIL FROM:<a@>', 'RSET',
  'MAIL FROM:<"john doe"@example.com>', 'RSET', 'MAIL FROM:<jö@example.com>', 'HELP MAIL', 'QUIT now', '', '     ',
  'BDAT 10 LAST', 'ETRN example.org', 'RCPT TO:<b@example.org>', 'DATA', 'MAIL FROM:<a@example.com> SIZE=0', 'RSET',
  'mail from:<@a.test,@b.test:u@c.test> BODY=8BITMIME', 'MAIL FROM:<a@example.com>', 'RCPT TO:<b@[127.0.0.1]>',
  'RCPT TO:<c@[IPv6:2001:db8::1]>', 'rcpt to:<Postmaster>', 'RCPT TO:<b@example.org> NOTIFY=junk',
  'RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS', 'RCPT TO:<b@example.org> ORCPT=b@example.org',
  'RCPT TO:<b@example.org> ORCPT=x400;b@example.org', 'RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;b@example.org',
  'RSET', 'QUIT',
];

/** The reply as one line; message ids, which differ, become <msgid>. */
function normal(reply: string): string {
  return reply.replace(/\n/g, '|').replace(/^250 2\.0\.0 [0-9a-f]{8} /, '250 2.0.0 <msgid> ');
}

/** Plays `script` to 6.8 and to ours, one step at a time, and checks every reply, or the departure listed for the step. */
async function compare(script: Step[]): Promise<void> {
  const ours = await startServer({ software: 'OpenSMTPD', resolveName: async () => 'localhost' });
  const a = await RawClient.connect(smtpd.port);
  const b = await RawClient.connect(ours.port);
  const table: string[] = [];
  for (const step of script) {
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
}

describe.skipIf(why !== undefined)('against OpenSMTPD 6.8', () => {
  it('gives the same replies to a scripted session, but for the listed departures', async () => {
    await compare(SCRIPT);
  });

  it('gives the same replies to odd arguments and orders, but for the listed departures', async () => {
    await compare(ODD_SCRIPT);
    expect(Object.keys(DEPARTURES).every((step) => SCRIPT.includes(step) || ODD_SCRIPT.includes(step))).toBe(true);
  });

  it('writes the same Received: field', async () => {
    const ours = await startServer({ software: 'OpenSMTPD', resolveName: async () => 'localhost' });
    for (const port of [smtpd.port, ours.port]) {
      const c = await RawClient.connect(port);
      await c.reply();
      for (const line of ['EHLO client.test', 'MAIL FROM:<alice@example.com>', 'RCPT TO:<bob@example.org>', 'DATA']) await c.command(line);
      expect(await c.command('Subject: received\r\n\r\nHello.\r\n.')).toMatch(/^250 /);
      await c.command('QUIT');
    }
    const queue = join(smtpd.spool, 'queue');
    const files = readdirSync(queue, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('/message'));
    const texts = files.map((f) => readFileSync(join(queue, f), 'latin1')).filter((t) => t.includes('Subject: received'));
    expect(texts).toHaveLength(1);
    const header = (text: string) => text.slice(0, text.indexOf('Subject:'))
      .replace(/\r\n/g, '\n').replace(/id [0-9a-f]{8}/, 'id <msgid>').replace(/\t\w{3}, .*\n$/, '\t<date>\n');
    expect(header(ours.store.committed()[0]!.text)).toBe(header(texts[0]!));
    expect(header(texts[0]!)).toBe('Received: from client.test (localhost [127.0.0.1])\n\tby mx.test (OpenSMTPD) with ESMTP id <msgid>\n\tfor <bob@example.org>;\n\t<date>\n');
  });
});

/**
 * One exchange of a session: what the client writes, as is (line ends
 * included; nothing, to only listen), and every reply each server gives
 * to it, in order, `<closed>` once it has closed the connection; no reply
 * at all means silence for QUIET_MS. `release` first lets the DNS answer.
 */
interface Exchange {
  send?: string;
  release?: true;
  opensmtpd: string[];
  ours: string[];
}

/** A departure that needs a session of its own, against the 6.8 with the small limits and ours with the same. */
interface SessionDeparture {
  situation: string;
  why: string;
  /** DNS answers are held from the connection on: neither server can greet until an exchange releases them. */
  holdDns?: true;
  exchanges: Exchange[];
  /** How ours' message ends in the queue. */
  stored?: string;
}

const QUIET_MS = 300;
const both = (send: string | undefined, ...replies: string[]): Exchange => ({ ...(send !== undefined && { send }), opensmtpd: replies, ours: replies });
const ehlo = (name: string) => ({
  opensmtpd: `250-mx.test Hello ${name} [127.0.0.1], pleased to meet you|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SIZE 1000|250-DSN|250 HELP`,
  ours: `250-mx.test Hello ${name} [127.0.0.1], pleased to meet you|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SIZE 1000|250-DSN|250-PIPELINING|250-SMTPUTF8|250 HELP`,
});
const OPENING: Exchange[] = [
  both(undefined, '220 mx.test ESMTP OpenSMTPD'),
  { send: 'EHLO client.test\r\n', opensmtpd: [ehlo('client.test').opensmtpd], ours: [ehlo('client.test').ours] },
];
const TRANSACTION: Exchange[] = [
  ...OPENING,
  both('MAIL FROM:<alice@example.com>\r\n', '250 2.0.0 Ok'),
  both('RCPT TO:<bob@example.org>\r\n', '250 2.1.5 Destination address valid: Recipient ok'),
];
const TOO_LONG = '500 5.5.2 Line too long';

const SESSION_DEPARTURES: SessionDeparture[] = [
  {
    situation: 'a recipient past `smtp limit max-rcpt`',
    why: 'RFC 5321 4.5.3.1.10: too many recipients is 452',
    exchanges: [
      ...TRANSACTION,
      both('RCPT TO:<carol@example.org>\r\n', '250 2.1.5 Destination address valid: Recipient ok'),
      {
        send: 'RCPT TO:<dave@example.org>\r\n',
        opensmtpd: ['451 4.5.3 Too many recipients: Too many recipients'],
        ours: ['452 4.5.3 Too many recipients: Too many recipients'],
      },
    ],
  },
  {
    situation: 'a message past `smtp max-message-size`',
    why: 'RFC 5321 4.5.3.1.10 and RFC 1870: a message over the size limit is 552; the session goes on in both',
    exchanges: [
      ...TRANSACTION,
      both('DATA\r\n', '354 Enter mail, end with "." on a line by itself'),
      {
        send: `${'x'.repeat(98)}\r\n`.repeat(11) + '.\r\n',
        opensmtpd: ['554 5.3.4 Message too big for system: Transaction failed, message too big'],
        ours: ['552 5.3.4 Message too big for system: Transaction failed, message too big'],
      },
      both('NOOP\r\n', '250 2.0.0 Ok'),
    ],
  },
  {
    situation: 'long command lines (602, 2,049 and 2,050 octets with the CRLF)',
    why: 'RFC 5321 4.5.3.1.4: 512 octets (more for MAIL, RCPT, AUTH), and a line too long is answered, not a reason to close',
    exchanges: [
      ...OPENING,
      { send: `NOOP ${'x'.repeat(595)}\r\n`, opensmtpd: [NO_ARGUMENTS], ours: [TOO_LONG] },
      { send: `NOOP ${'x'.repeat(2042)}\r\n`, opensmtpd: [NO_ARGUMENTS], ours: [TOO_LONG] },
      { send: `NOOP ${'x'.repeat(2043)}\r\n`, opensmtpd: ['500 5.0.0 Command line too long', '<closed>'], ours: [TOO_LONG] },
      { send: 'NOOP\r\n', opensmtpd: ['<closed>'], ours: ['250 2.0.0 Ok'] },
    ],
  },
  {
    situation: 'commands sent together',
    why: 'RFC 2920: PIPELINING is offered; only a command that changes what may follow (EHLO, DATA, NOOP...) must end a batch',
    exchanges: [
      ...OPENING,
      {
        send: 'MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n',
        opensmtpd: ['500 5.5.1 Invalid command: Pipelining not supported', '<closed>'],
        ours: ['250 2.0.0 Ok', '250 2.1.5 Destination address valid: Recipient ok'],
      },
      {
        send: 'NOOP\r\nNOOP\r\n',
        opensmtpd: ['<closed>'],
        ours: ['500 5.5.1 Invalid command: Pipelining not allowed after NOOP', '<closed>'],
      },
    ],
  },
  {
    situation: 'LF . LF in a message',
    why: 'SMTP smuggling: only CRLF . CRLF ends a message; 6.8 ends it at LF . LF and reads what follows as commands',
    exchanges: [
      ...TRANSACTION,
      both('DATA\r\n', '354 Enter mail, end with "." on a line by itself'),
      { send: 'Subject: smuggled\r\n\r\nbody\n.\n', opensmtpd: ['250 2.0.0 <msgid> Message accepted for delivery'], ours: [] },
      { send: 'NOOP\r\n', opensmtpd: ['250 2.0.0 Ok'], ours: [] },
      {
        send: '.\r\n',
        opensmtpd: ['500 5.5.1 Invalid command: Command unrecognized'],
        ours: ['250 2.0.0 <msgid> Message accepted for delivery'],
      },
    ],
    stored: '\r\nSubject: smuggled\r\n\r\nbody\r\n.\r\nNOOP\r\n',
  },
  {
    situation: 'a command sent before the greeting (the greeting waits for reverse DNS)',
    why: 'RFC 5321 3.1: a client that talks first has not waited, and a server may answer 554 in place of the greeting',
    holdDns: true,
    exchanges: [
      { send: 'EHLO early.test\r\n', opensmtpd: [], ours: ['554 5.5.1 Invalid command: Talked before the greeting', '<closed>'] },
      { release: true, opensmtpd: ['220 mx.test ESMTP OpenSMTPD', ehlo('early.test').opensmtpd], ours: ['<closed>'] },
      { send: 'QUIT\r\n', opensmtpd: ['221 2.0.0 Bye', '<closed>'], ours: ['<closed>'] },
    ],
  },
];

/** The replies an exchange expects: that many, or none for QUIET_MS. */
async function heard(c: RawClient, count: number): Promise<string[]> {
  if (count === 0) return c.reply(QUIET_MS).then((r) => [normal(r)], () => []);
  const replies: string[] = [];
  for (let i = 0; i < count; i++) replies.push(normal(await c.reply()));
  return replies;
}

describe.skipIf(why !== undefined)('against OpenSMTPD 6.8, in sessions of their own', () => {
  it.each(SESSION_DEPARTURES.map((d) => [d.situation, d] as const))('%s', async (_, departure) => {
    const ours = await startServer({
      software: 'OpenSMTPD', limits: SMALL_LIMITS, resolveName: async () => (await dns.pass(), undefined),
    });
    for (const [side, port] of [['opensmtpd', small.port], ['ours', ours.port]] as const) {
      const release = departure.holdDns ? dns.hold() : undefined;
      try {
        const c = await RawClient.connect(port);
        const transcript: string[] = [];
        for (const exchange of departure.exchanges) {
          if (exchange.release) release?.();
          if (exchange.send !== undefined) c.send(exchange.send);
          const replies = await heard(c, exchange[side].length);
          transcript.push(`C: ${JSON.stringify(exchange.send ?? '')}\n${replies.map((r) => `S: ${r}`).join('\n')}`);
          expect(replies, `${side}, ${departure.why}:\n${transcript.join('\n')}`).toEqual(exchange[side]);
        }
      } finally {
        release?.();
      }
    }
    if (departure.stored) expect(ours.store.committed().at(-1)?.text.endsWith(departure.stored)).toBe(true);
  });
});
