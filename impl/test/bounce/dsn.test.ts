import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildBounce, readOriginal, RETURN_FULL_MAX, splitOriginal, type BounceInput, type BounceRecipient,
} from '../../src/bounce/dsn.ts';
import { EXPIRED_STATUS } from '../../src/bounce/status.ts';
import { messageDate } from '../../src/smtp/received.ts';

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3', join(process.env.HOME ?? '', '.pyenv/shims/python3')].find(existsSync);
if (!PYTHON && process.env.CI) throw new Error('python3 is required when CI is set');
const READER = join(import.meta.dirname, 'read_dsn.py');

const dir = mkdtempSync(join(tmpdir(), 'saf-bounce-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Part {
  type: string;
  cte: string | null;
  charset: string | null;
  description: string | null;
  defects: string[];
  blocks?: [string, string][][];
  inner?: { headers: [string, string][]; body_b64: string };
  payload_b64?: string;
  text?: string;
}
interface Parsed {
  content_type: string;
  report_type: string;
  headers: [string, string][];
  defects: string[];
  parts: Part[];
}

let files = 0;
/** The bounce as Python's email package reads it. */
function read(bounce: Buffer): Parsed {
  const file = join(dir, `bounce-${++files}.eml`);
  writeFileSync(file, bounce);
  const r = spawnSync(PYTHON!, [READER, file], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Parsed;
}

const get = (fields: [string, string][], name: string) => fields.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
const names = (fields: [string, string][]) => fields.map(([k]) => k);
/** Seconds since the epoch of an RFC 5322 date, its zone comment dropped. */
const when = (date: string | undefined) => Date.parse(date!.replace(/\s*\([^)]*\)$/, '')) / 1000;
/**
 * Python hands decoded payloads back with LF line ends, and words wrap
 * where they will: compare text with its white space squeezed. Byte for
 * byte comparisons are made on the bounce itself.
 */
const words = (text: string | undefined) => text!.replace(/\s+/g, ' ');
const lf = (text: string) => text.replace(/\r\n/g, '\n');
const decoded = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

const ARRIVAL = 1_800_000_000;
const HEADERS = [
  'Received: from mail.example.com (mail.example.com [192.0.2.1])',
  '\tby mx.example.net (OpenSMTPD) with ESMTPS id 1a2b3c4d',
  '\tfor <bob@example.org>; Fri, 15 Jan 2027 08:00:00 +0000 (UTC)',
  'From: Alice <alice@example.com>',
  'To: Bob <bob@example.org>, Carol <carol@example.org>',
  'Subject: the quarterly figures',
  'Message-ID: <figures-2027@example.com>',
  'X-Odd:   spacing  kept ',
  '',
].join('\r\n');
const BODY = 'Hello Bob,\r\n\r\nthe figures are attached.\r\n.\r\n-- \r\nAlice\r\n';
const MESSAGE = Buffer.from(HEADERS + '\r\n' + BODY);

const BOB: BounceRecipient = {
  finalRecipient: 'bob@example.org',
  originalRecipient: 'rfc822;Bob@Example.org',
  diagnostic: '550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table; ' +
    'this reply is long enough that its field must be folded over several lines',
  remoteMta: 'mx1.example.org',
  lastAttemptAt: ARRIVAL + 65,
};
const CAROL: BounceRecipient = { finalRecipient: 'carol@example.org', diagnostic: 'mailbox is full', lastAttemptAt: ARRIVAL + 70 };

function failure(more: Partial<BounceInput> = {}): BounceInput {
  return {
    action: 'failed',
    reportingHost: 'mx.example.net',
    sender: { user: 'alice', domain: 'example.com' },
    arrivalDate: ARRIVAL,
    envid: 'QQ314159',
    recipients: [BOB, CAROL],
    original: splitOriginal(MESSAGE),
    now: ARRIVAL + 100,
    ...more,
  };
}

/** Every line ends in CRLF and holds at most 998 octets; the bounce's own text is 7-bit. */
function expectWellFormed(bounce: Buffer, returned?: Buffer): void {
  const text = bounce.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  for (const line of text.slice(0, -2).split('\r\n')) {
    expect(line).not.toMatch(/[\r\n]/);
    expect(line.length).toBeLessThanOrEqual(998);
  }
  const own = returned ? Buffer.concat([bounce.subarray(0, bounce.indexOf(returned)), bounce.subarray(bounce.indexOf(returned) + returned.length)]) : bounce;
  expect([...own].every((b) => b < 0x80)).toBe(true);
}

describe.skipIf(!PYTHON)('a bounce, as Python reads it', () => {
  it('is a multipart/report of type delivery-status with the three parts in order', () => {
    const bounce = buildBounce(failure());
    const m = read(bounce);
    expect(m.defects).toEqual([]);
    expect(m.content_type).toBe('multipart/report');
    expect(m.report_type).toBe('delivery-status');
    expect(m.parts.map((p) => p.type)).toEqual(['text/plain', 'message/delivery-status', 'message/rfc822']);
    expect(m.parts.flatMap((p) => p.defects)).toEqual([]);
    expectWellFormed(bounce, MESSAGE);
  });

  it('is addressed from the mailer daemon to the sender, and marked as automatic', () => {
    const m = read(buildBounce(failure({ messageId: '<b1@mx.example.net>' })));
    expect(get(m.headers, 'From')).toBe('Mail Delivery System <MAILER-DAEMON@mx.example.net>');
    expect(get(m.headers, 'To')).toBe('alice@example.com');
    expect(get(m.headers, 'Subject')).toBe('Delivery status notification: error');
    expect(when(get(m.headers, 'Date'))).toBe(ARRIVAL + 100);
    expect(get(m.headers, 'Message-ID')).toBe('<b1@mx.example.net>');
    expect(get(m.headers, 'MIME-Version')).toBe('1.0');
    expect(get(m.headers, 'Auto-Submitted')).toBe('auto-replied');
    expect(get(m.headers, 'Content-Transfer-Encoding')).toBe('7bit');
  });

  it('reports each recipient in the delivery-status part', () => {
    const m = read(buildBounce(failure()));
    const [perMessage, bob, carol, ...rest] = m.parts[1]!.blocks!;
    expect(rest).toEqual([]);
    expect(names(perMessage!)).toEqual(['Original-Envelope-Id', 'Reporting-MTA', 'Arrival-Date']);
    expect(get(perMessage!, 'Original-Envelope-Id')).toBe('QQ314159');
    expect(get(perMessage!, 'Reporting-MTA')).toBe('dns; mx.example.net');
    expect(when(get(perMessage!, 'Arrival-Date'))).toBe(ARRIVAL);

    expect(names(bob!)).toEqual([
      'Original-Recipient', 'Final-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code', 'Last-Attempt-Date',
    ]);
    expect(get(bob!, 'Original-Recipient')).toBe('rfc822; Bob@Example.org');
    expect(get(bob!, 'Final-Recipient')).toBe('rfc822; bob@example.org');
    expect(get(bob!, 'Action')).toBe('failed');
    expect(get(bob!, 'Status')).toBe('5.1.1');
    expect(get(bob!, 'Remote-MTA')).toBe('dns; mx1.example.org');
    expect(get(bob!, 'Diagnostic-Code')).toBe(`smtp; ${BOB.diagnostic}`);
    expect(when(get(bob!, 'Last-Attempt-Date'))).toBe(ARRIVAL + 65);

    expect(names(carol!)).toEqual(['Final-Recipient', 'Action', 'Status', 'Diagnostic-Code', 'Last-Attempt-Date']);
    expect(get(carol!, 'Status')).toBe('5.0.0');
    expect(get(carol!, 'Diagnostic-Code')).toBe('X-Unix; mailbox is full');
  });

  it('says what happened in plain words', () => {
    const m = read(buildBounce(failure()));
    const notice = m.parts[0]!;
    expect([notice.charset, notice.cte]).toEqual(['us-ascii', '7bit']);
    expect(words(notice.text)).toContain('Your message could not be delivered to the recipients below.');
    expect(words(notice.text)).toContain('<bob@example.org>: 550 5.1.1 <bob@example.org>: Recipient address rejected');
    expect(lf(notice.text!)).toContain('<carol@example.org>:\n    mailbox is full\n');
    expect(words(notice.text)).toContain('A copy of your message is attached');
  });

  it('returns the whole message, byte for byte, when RET is FULL or not given', () => {
    for (const ret of [undefined, 'FULL'] as const) {
      const bounce = buildBounce(failure(ret ? { ret } : {}));
      expect(bounce.includes(MESSAGE)).toBe(true);
      const part = read(bounce).parts[2]!;
      expect([part.type, part.cte]).toEqual(['message/rfc822', '7bit']);
      expect(get(part.inner!.headers, 'Subject')).toBe('the quarterly figures');
      expect(get(part.inner!.headers, 'X-Odd')).toBe('spacing  kept ');
      expect(decoded(part.inner!.body_b64)).toBe(lf(BODY));
    }
  });

  it('returns only the header section, byte for byte, for RET=HDRS', () => {
    const bounce = buildBounce(failure({ ret: 'HDRS' }));
    const m = read(bounce);
    const part = m.parts[2]!;
    expect(part.type).toBe('text/rfc822-headers');
    expect(decoded(part.payload_b64!)).toBe(lf(HEADERS));
    expect(bounce.includes(Buffer.from(HEADERS))).toBe(true);
    expect(bounce.includes(Buffer.from('the figures are attached'))).toBe(false);
    expect(m.parts[0]!.text).toContain('The headers of your message are attached');
  });

  it(`returns only the headers of a message over ${RETURN_FULL_MAX} bytes`, () => {
    const big = Buffer.concat([Buffer.from(HEADERS + '\r\n'), Buffer.from(`${'x'.repeat(76)}\r\n`.repeat(1400))]);
    expect(big.length).toBeGreaterThan(RETURN_FULL_MAX);
    const bounce = buildBounce(failure({ original: splitOriginal(big), messageId: '<x@y>' }));
    expect(read(bounce).parts[2]!.type).toBe('text/rfc822-headers');
    expect(bounce.length).toBeLessThan(8 * 1024);
    // With the headers only, the whole message is not needed at all.
    const { full: _unused, ...headersOnly } = splitOriginal(big);
    expect(buildBounce(failure({ original: headersOnly, messageId: '<x@y>' })).length).toBe(bounce.length);
  });

  it('returns an 8-bit message as 8bit, and says so at the top', () => {
    const latin = Buffer.concat([Buffer.from(HEADERS + '\r\n'), Buffer.from('Grüße aus Köln\r\n', 'utf8')]);
    const bounce = buildBounce(failure({ original: splitOriginal(latin) }));
    const m = read(bounce);
    expect(get(m.headers, 'Content-Transfer-Encoding')).toBe('8bit');
    expect(m.parts[2]!.cte).toBe('8bit');
    expect(decoded(m.parts[2]!.inner!.body_b64)).toBe('Grüße aus Köln\n');
    expect(bounce.includes(latin)).toBe(true);
    expectWellFormed(bounce, latin);
  });

  it('returns headers only for a message with lines too long for message/rfc822', () => {
    const long = Buffer.concat([Buffer.from(HEADERS + '\r\n'), Buffer.from(`${'y'.repeat(1200)}\r\n`)]);
    const bounce = buildBounce(failure({ original: splitOriginal(long) }));
    expect(read(bounce).parts[2]!.type).toBe('text/rfc822-headers');
    expectWellFormed(bounce, Buffer.from(HEADERS));
  });

  it('returns headers with a line too long to send as they are in base64, unchanged', () => {
    const headers = `Subject: ok\r\nX-Long: ${'z'.repeat(1500)}\r\n`;
    const bounce = buildBounce(failure({ original: splitOriginal(Buffer.from(`${headers}\r\nbody\r\n`)) }));
    const part = read(bounce).parts[2]!;
    expect([part.type, part.cte]).toEqual(['text/rfc822-headers', 'base64']);
    expect(decoded(part.payload_b64!)).toBe(headers);
    expectWellFormed(bounce);
  });

  it('returns headers only for a message with a bare CR, which neither 7bit nor 8bit allows', () => {
    const bare = Buffer.from(`${HEADERS}\r\na\rb\r\n`);
    const bounce = buildBounce(failure({ original: splitOriginal(bare) }));
    expect(read(bounce).parts[2]!.type).toBe('text/rfc822-headers');
    expectWellFormed(bounce, Buffer.from(HEADERS));
  });

  it('returns headers with a bare CR in base64, unchanged', () => {
    const headers = 'Subject: ok\r\nX-CR: a\rb\r\n';
    const bounce = buildBounce(failure({ original: splitOriginal(Buffer.from(`${headers}\r\nbody\r\n`)) }));
    const part = read(bounce).parts[2]!;
    expect([part.type, part.cte]).toEqual(['text/rfc822-headers', 'base64']);
    expect(decoded(part.payload_b64!)).toBe(headers);
    expectWellFormed(bounce);
  });

  it('reports an expired envelope as failed with status 4.4.7 and its last error', () => {
    const m = read(buildBounce(failure({
      recipients: [{ finalRecipient: 'bob@example.org', status: EXPIRED_STATUS, diagnostic: '421 4.3.0 try again later', lastAttemptAt: ARRIVAL + 4 * 86400 }],
    })));
    const bob = m.parts[1]!.blocks![1]!;
    expect([get(bob, 'Action'), get(bob, 'Status'), get(bob, 'Diagnostic-Code')]).toEqual(['failed', '4.4.7', 'smtp; 421 4.3.0 try again later']);
  });

  it('writes a delay warning: Action delayed, Will-Retry-Until, headers only', () => {
    const until = ARRIVAL + 4 * 86400;
    const bounce = buildBounce(failure({
      action: 'delayed',
      ret: 'FULL',
      delayedFor: 4 * 3600,
      now: ARRIVAL + 4 * 3600,
      recipients: [{ ...BOB, diagnostic: '451 4.7.1 greylisted, come back later', willRetryUntil: until }],
    }));
    const m = read(bounce);
    expect(get(m.headers, 'Subject')).toBe('Delivery status notification: delay');
    const bob = m.parts[1]!.blocks![1]!;
    expect(get(bob, 'Action')).toBe('delayed');
    expect(get(bob, 'Status')).toBe('4.7.1');
    expect(when(get(bob, 'Will-Retry-Until'))).toBe(until);
    expect(m.parts[2]!.type).toBe('text/rfc822-headers');
    expect(words(m.parts[0]!.text)).toContain('it has been waiting for 4 hours.');
    expect(words(m.parts[0]!.text)).toContain('This is only a warning.');
    expect(words(m.parts[0]!.text)).toContain(`(the mail system will keep trying until ${messageDate(new Date(until * 1000))})`);
    expectWellFormed(bounce, Buffer.from(HEADERS));
  });

  it('keeps the delivery-status part 7-bit for an internationalized recipient, and the notice readable', () => {
    const bounce = buildBounce(failure({
      recipients: [{ finalRecipient: 'jürgen@example.de', originalRecipient: 'utf-8;jürgen@example.de', diagnostic: '550 5.1.1 unknown' }],
    }));
    const m = read(bounce);
    const block = m.parts[1]!.blocks![1]!;
    expect(get(block, 'Final-Recipient')).toBe('utf-8; j\\x{FC}rgen@example.de');
    expect(get(block, 'Original-Recipient')).toBe('utf-8; j\\x{FC}rgen@example.de');
    expect([m.parts[0]!.charset, m.parts[0]!.cte]).toEqual(['utf-8', 'quoted-printable']);
    expect(m.parts[0]!.text).toContain('<jürgen@example.de>:');
    expectWellFormed(bounce, MESSAGE);
  });

  it('keeps every line within 998 octets, whatever the error text', () => {
    const bounce = buildBounce(failure({
      recipients: [{ finalRecipient: 'bob@example.org', diagnostic: `550 ${'w'.repeat(2500)} end` }],
    }));
    expectWellFormed(bounce, MESSAGE);
    const code = get(read(bounce).parts[1]!.blocks![1]!, 'Diagnostic-Code')!;
    expect(code.replace(/ /g, '')).toBe(`smtp;550${'w'.repeat(2500)}end`);
  });

  it('puts several recipients of one message in one bounce, and refuses none', () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ finalRecipient: `user${i}@example.org`, diagnostic: '550 5.1.1 unknown' }));
    expect(read(buildBounce(failure({ recipients: many }))).parts[1]!.blocks).toHaveLength(51);
    expect(() => buildBounce(failure({ recipients: [] }))).toThrow(/no recipients/);
  });
});

describe.skipIf(!PYTHON)('a success report (NOTIFY=SUCCESS), as Python reads it', () => {
  const delivered = (more: Partial<BounceInput> = {}) => failure({
    action: 'delivered',
    recipients: [{ finalRecipient: 'bob@example.org', originalRecipient: 'rfc822;Bob@Example.org', lastAttemptAt: ARRIVAL + 2 }],
    now: ARRIVAL + 3,
    ...more,
  });

  it('is a multipart/report whose delivery-status says delivered, 2.0.0, with the headers as third part', () => {
    const bounce = buildBounce(delivered());
    const m = read(bounce);
    expect(m.defects).toEqual([]);
    expect([m.content_type, m.report_type]).toEqual(['multipart/report', 'delivery-status']);
    expect(m.parts.map((p) => p.type)).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(m.parts.flatMap((p) => p.defects)).toEqual([]);
    expect(get(m.headers, 'Subject')).toBe('Delivery status notification: success');
    expect(get(m.headers, 'Auto-Submitted')).toBe('auto-replied');
    const [perMessage, bob, ...rest] = m.parts[1]!.blocks!;
    expect(rest).toEqual([]);
    expect(names(bob!)).toEqual(['Original-Recipient', 'Final-Recipient', 'Action', 'Status', 'Last-Attempt-Date']);
    expect([get(bob!, 'Action'), get(bob!, 'Status')]).toEqual(['delivered', '2.0.0']);
    expect(when(get(bob!, 'Last-Attempt-Date'))).toBe(ARRIVAL + 2);
    expect(m.parts[2]!.description).toBe('Delivered message headers');
    expect(decoded(m.parts[2]!.payload_b64!)).toBe(lf(HEADERS));
    expectWellFormed(bounce, Buffer.from(HEADERS));
    // ENVID and ORCPT come back, so that the sender's software can match the report.
    expect(get(perMessage!, 'Original-Envelope-Id')).toBe('QQ314159');
    expect(get(bob!, 'Original-Recipient')).toBe('rfc822; Bob@Example.org');
  });

  it('carries neither ENVID nor ORCPT when the client gave none', () => {
    const { envid: _none, ...input } = delivered({ recipients: [{ finalRecipient: 'bob@example.org' }] });
    const [perMessage, bob] = read(buildBounce(input)).parts[1]!.blocks!;
    expect(names(perMessage!)).toEqual(['Reporting-MTA', 'Arrival-Date']);
    expect(names(bob!)).toEqual(['Final-Recipient', 'Action', 'Status']);
  });

  it('says in words that the message was delivered, not read', () => {
    const notice = read(buildBounce(delivered())).parts[0]!;
    expect(words(notice.text)).toContain('Your message was delivered to the recipients below');
    expect(words(notice.text)).toContain('not that it has been read');
    expect(lf(notice.text!)).toContain('\n<bob@example.org>\n');
    expect(words(notice.text)).toContain('The headers of your message are attached');
  });

  it('returns the header section only, even with RET=FULL: the sender already has the message', () => {
    for (const ret of [undefined, 'FULL', 'HDRS'] as const) {
      const bounce = buildBounce(delivered(ret ? { ret } : {}));
      expect(read(bounce).parts[2]!.type).toBe('text/rfc822-headers');
      expect(bounce.includes(Buffer.from('the figures are attached'))).toBe(false);
    }
  });

  it('keeps a given success status, and never reports an error status as delivered', () => {
    const status = (r: Partial<BounceRecipient>) => get(read(buildBounce(delivered({
      recipients: [{ finalRecipient: 'bob@example.org', ...r }],
    }))).parts[1]!.blocks![1]!, 'Status');
    expect(status({ status: '2.1.5' })).toBe('2.1.5');
    expect(status({ status: '5.1.1' })).toBe('2.0.0');
    expect(status({ diagnostic: '550 5.1.1 unknown' })).toBe('2.0.0');
  });
});

describe('splitOriginal', () => {
  it.each<[string, string, string]>([
    ['a message with a body', 'A: 1\r\nB: 2\r\n\r\nbody\r\n', 'A: 1\r\nB: 2\r\n'],
    ['a message without a body', 'A: 1\r\n', 'A: 1\r\n'],
    ['an empty body', 'A: 1\r\n\r\n', 'A: 1\r\n'],
    ['no header section', '\r\nbody\r\n', ''],
  ])('finds the header section of %s', (_name, message, headers) => {
    const o = splitOriginal(Buffer.from(message));
    expect(o.headers.toString()).toBe(headers);
    expect(o.size).toBe(message.length);
  });
});

describe('readOriginal', () => {
  const message = Buffer.from('Subject: hi\r\nFrom: a@example.org\r\n\r\nbody line\r\n' + 'x'.repeat(500) + '\r\n');
  /** The message in pieces of `n` octets, so that the empty line falls across them. */
  async function* pieces(n: number) {
    for (let i = 0; i < message.length; i += n) yield message.subarray(i, i + n);
  }

  it('gives what splitOriginal gives when the whole message is wanted and small enough', async () => {
    for (const n of [1, 3, 7, 1000]) expect(await readOriginal(pieces(n), 10_000)).toEqual(splitOriginal(message));
  });

  it('keeps only the header section, and still counts the size, past the limit or when headers only are wanted', async () => {
    for (const limit of [-1, 100]) {
      for (const n of [1, 5, 64]) {
        expect(await readOriginal(pieces(n), limit)).toEqual({ headers: splitOriginal(message).headers, size: message.length });
      }
    }
  });
});
