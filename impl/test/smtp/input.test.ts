import { describe, expect, it } from 'vitest';
import { InputBuffer, LINE_BUFFER_MAX, TOO_LONG } from '../../src/smtp/input.ts';

/** Pushes `input` in chunks of `size` octets and takes lines after each; what takeLine gave, in order. */
function lines(input: string, size = input.length): (string | 'TOO_LONG')[] {
  const buffer = new InputBuffer();
  const taken: (string | 'TOO_LONG')[] = [];
  for (let at = 0; at < input.length; at += size) {
    buffer.push(Buffer.from(input.slice(at, at + size), 'latin1'));
    for (let line = buffer.takeLine(); line !== undefined; line = buffer.takeLine()) {
      if (line === TOO_LONG) return [...taken, 'TOO_LONG'];
      taken.push(line.toString('latin1'));
    }
  }
  return taken;
}

describe('InputBuffer', () => {
  it('cuts lines at CRLF and at a bare LF, keeping what has not ended', () => {
    expect(lines('NOOP\r\nRSET\nQUI')).toEqual(['NOOP', 'RSET']);
    for (let size = 1; size <= 5; size++) expect(lines('NOOP\r\nRSET\nQUIT\r\n', size)).toEqual(['NOOP', 'RSET', 'QUIT']);
  });

  it('holds a line of LINE_BUFFER_MAX octets, line end included, and no longer, however the bytes are split', () => {
    const longest = `NOOP ${'x'.repeat(LINE_BUFFER_MAX - 7)}\r\n`;
    const over = `NOOP ${'x'.repeat(LINE_BUFFER_MAX - 6)}\r\n`;
    expect(longest).toHaveLength(LINE_BUFFER_MAX);
    for (const size of [1, 2, 7, 512, 4096, LINE_BUFFER_MAX - 1, LINE_BUFFER_MAX, LINE_BUFFER_MAX + 1, 100_000]) {
      expect(lines(`${longest}NOOP\r\n`, size), `in chunks of ${size}`).toEqual([longest.slice(0, -2), 'NOOP']);
      expect(lines(`NOOP\r\n${over}NOOP\r\n`, size), `in chunks of ${size}`).toEqual(['NOOP', 'TOO_LONG']);
    }
  });

  it('gives up on a line whose end has not come within LINE_BUFFER_MAX octets, without waiting for it', () => {
    expect(lines('x'.repeat(LINE_BUFFER_MAX - 1))).toEqual([]);
    expect(lines('x'.repeat(LINE_BUFFER_MAX))).toEqual(['TOO_LONG']);
    expect(lines('x'.repeat(LINE_BUFFER_MAX), 1)).toEqual(['TOO_LONG']);
  });
});
