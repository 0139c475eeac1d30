import { describe, expect, it } from 'vitest';
import { createLogger, parseTraceFlags, syslogTime } from '../../src/log/index.ts';

describe('logging', () => {
  const at = new Date(2025, 10, 5, 4, 5, 6);

  it('writes the message as given in the foreground, as smtpd -d does', () => {
    const lines: string[] = [];
    const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => lines.push(l) });
    log.info('info: OpenSMTPD-compatible smtpd starting');
    log.debug('debug: not shown without -v');
    expect(lines).toEqual(['info: OpenSMTPD-compatible smtpd starting\n']);
  });

  it('adds time, host and smtpd[pid] in maillog lines', () => {
    const lines: string[] = [];
    const log = createLogger({ verbose: 1, trace: new Set(), format: 'maillog', write: (l) => lines.push(l), now: () => at });
    log.debug('debug: shown with -v');
    expect(lines[0]).toMatch(new RegExp(`^Nov  5 04:05:06 \\S+ smtpd\\[${process.pid}\\]: debug: shown with -v\\n$`));
    expect(syslogTime(at)).toBe('Nov  5 04:05:06');
  });

  it('writes trace lines only for the flags asked for; reconfigures in place', () => {
    const lines: string[] = [];
    const log = createLogger({ verbose: 0, trace: parseTraceFlags(['imsg']), format: 'foreground', write: (l) => lines.push(l) });
    log.trace('imsg', 'imsg: a -> b: x');
    log.trace('queue', 'queue: hidden');
    log.configure({ trace: parseTraceFlags(['queue']) });
    log.trace('queue', 'queue: shown');
    expect(lines).toEqual(['imsg: a -> b: x\n', 'queue: shown\n']);
  });

  it('parses -T flags, comma lists and all, and names the known ones for a typo', () => {
    expect([...parseTraceFlags(['imsg,smtp', 'rules'])]).toEqual(['imsg', 'smtp', 'rules']);
    expect(parseTraceFlags(['all']).size).toBeGreaterThan(10);
    expect(() => parseTraceFlags(['imgs'])).toThrow(/^unknown trace flag "imgs" \(known: imsg, io, /);
  });
});
