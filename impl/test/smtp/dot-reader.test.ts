import { describe, expect, it } from 'vitest';
import { DotReader } from '../../src/smtp/dot-reader.ts';
import { HeaderScan } from '../../src/smtp/headers.ts';

/** Feeds `input` in chunks of `size` octets, as the socket might; returns the content and what was left after the end. */
function read(input: string, size = input.length): { content: string; end: boolean; rest: string; bareLf: number } {
  const reader = new DotReader();
  const out: Buffer[] = [];
  let pending = Buffer.alloc(0);
  for (let at = 0; at < input.length || pending.length > 0; at += size) {
    const chunk = Buffer.from(input.slice(at, at + size), 'latin1');
    const buf = Buffer.concat([pending, chunk]);
    const { next, end } = reader.read(buf, 0, out);
    pending = buf.subarray(next);
    if (end) return { content: Buffer.concat(out).toString('latin1'), end, rest: pending.toString('latin1') + input.slice(at + size), bareLf: reader.bareLf };
    if (at >= input.length) break;
  }
  return { content: Buffer.concat(out).toString('latin1'), end: false, rest: pending.toString('latin1'), bareLf: reader.bareLf };
}

describe('DotReader', () => {
  it('ends at CRLF . CRLF and leaves what follows', () => {
    expect(read('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n')).toEqual({
      content: 'Subject: x\r\n\r\nbody\r\n', end: true, rest: 'QUIT\r\n', bareLf: 0,
    });
  });

  it('reads an empty message: the DATA line supplies the first CRLF', () => {
    expect(read('.\r\n')).toMatchObject({ content: '', end: true });
  });

  it('removes one leading dot from a stuffed line', () => {
    expect(read('..\r\n..hidden\r\n.x\r\n.\r\n').content).toBe('.\r\n.hidden\r\nx\r\n');
  });

  it('gives the same result whatever the chunk boundaries', () => {
    const input = 'a\r\n..b\r\n.\rc\r\nd\ne\r\n.\r\nNEXT';
    const whole = read(input);
    for (let size = 1; size <= input.length; size++) expect(read(input, size)).toEqual(whole);
    expect(whole).toEqual({ content: 'a\r\n.b\r\n.\rc\r\nd\r\ne\r\n', end: true, rest: 'NEXT', bareLf: 1 });
  });

  describe('does not end at anything but CRLF . CRLF (SMTP smuggling)', () => {
    const attempts: Record<string, string> = {
      'LF . LF': 'body\n.\nMAIL FROM:<evil@x>\r\n',
      'LF . CRLF': 'body\n.\r\nMAIL FROM:<evil@x>\r\n',
      'CRLF . LF': 'body\r\n.\nMAIL FROM:<evil@x>\r\n',
      'CR . CR': 'body\r.\rMAIL FROM:<evil@x>\r\n',
      'CR . CRLF': 'body\r.\r\nMAIL FROM:<evil@x>\r\n',
      'CRLF . CR': 'body\r\n.\rMAIL FROM:<evil@x>\r\n',
    };
    for (const [name, smuggled] of Object.entries(attempts)) {
      it(name, () => {
        for (const size of [1, 2, 3, 1000]) {
          const r = read(`${smuggled}.\r\nAFTER`, size);
          expect(r.end).toBe(true);
          expect(r.rest).toBe('AFTER');
          expect(r.content).toContain('MAIL FROM:<evil@x>\r\n');
          expect(r.content).not.toMatch(/(^|[^\r])\n/); // every LF stored is part of a CRLF
        }
      });
    }
  });

  it('stores a bare LF as CRLF and keeps a lone dot that does not end the message', () => {
    expect(read('one\ntwo\n.\nthree\r\n.\r\n')).toMatchObject({ content: 'one\r\ntwo\r\n.\r\nthree\r\n', end: true, bareLf: 3 });
  });

  it('waits for more input at a line that starts with a dot', () => {
    const reader = new DotReader();
    const out: Buffer[] = [];
    expect(reader.read(Buffer.from('x\r\n.'), 0, out)).toEqual({ next: 3, end: false });
    expect(reader.read(Buffer.from('.\r'), 0, out)).toEqual({ next: 0, end: false });
    expect(reader.read(Buffer.from('.\r\n'), 0, out)).toEqual({ next: 3, end: true });
  });
});

describe('HeaderScan', () => {
  function scan(text: string, size = text.length): HeaderScan {
    const s = new HeaderScan();
    for (let at = 0; at < text.length; at += size) s.feed(Buffer.from(text.slice(at, at + size)));
    return s;
  }

  it('finds the fields it looks for and the blank line, over any chunking', () => {
    const text = 'Received: a\r\n\tcontinued: no\r\nDATE: x\r\nMessage-Id: <y>\r\nReceived: b\r\n\r\nDate: in body\r\n';
    for (const size of [1, 3, 7, 200]) {
      const s = scan(text, size);
      expect([s.received, s.hasDate, s.hasMessageId, s.end]).toEqual([2, true, true, text.indexOf('\r\n\r\n') + 2]);
    }
  });

  it('ends the header section at a line that is not a field', () => {
    const s = scan('Subject: x\r\nthis is body text\r\nDate: no\r\n');
    expect([s.end, s.hasDate]).toEqual([12, false]);
  });
});
