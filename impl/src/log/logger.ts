/**
 * Logging, as OpenSMTPD does it: every process writes its own lines, the
 * level decides whether a line is written at all, and the text is the
 * operator's. OpenSMTPD writes the tag into the message itself
 * (`log_info("info: OpenSMTPD %s starting")`, `log_warnx("warn: ...")`),
 * while its per-session lines carry none, so that one grep finds one kind
 * of event; this module does the same and never adds a tag of its own.
 *
 *     const log = createLogger({ verbose: 0, trace: parseTraceFlags(['imsg']), format: 'foreground' });
 *     log.info('info: OpenSMTPD-compatible smtpd starting');
 *     log.trace('imsg', 'imsg: smtp -> queue: queue.message.commit');
 */
import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { type TraceFlag, type TraceFlags } from './trace.ts';

/**
 * `foreground` (-d) writes the bare message to stderr, as `smtpd -d` does.
 * `maillog` adds what syslog would add, a time, the host and `smtpd[pid]`,
 * so that the lines of eight processes can be told apart. The daemon has
 * no syslog connection yet: without -d it writes maillog lines to stderr.
 */
export type LogFormat = 'foreground' | 'maillog';

export interface LoggerOptions {
  /** 0: crit, warn and info; 1 or more (-v): debug too. */
  verbose: number;
  trace: TraceFlags;
  format: LogFormat;
  /** Where lines go; stderr by default. Tests pass their own. */
  write?: (line: string) => void;
  /** The time, for maillog lines; tests fix it. */
  now?: () => Date;
}

/**
 * syslog's priorities: `crit`, `warn` and `info` are always written,
 * `debug` only with -v. The method chosen is the priority a syslog sink
 * would file the line under; the words `warn:` or `info:` are the caller's.
 */
export interface Logger {
  crit(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** A line written only when the operator asked for this trace flag (-T). */
  trace(flag: TraceFlag, message: string): void;
  tracing(flag: TraceFlag): boolean;
  /** Changes the options in place: a child learns -v, -T and the format from the parent after it has started logging. */
  configure(options: Partial<LoggerOptions>): void;
  readonly options: Readonly<LoggerOptions>;
}

export function createLogger(initial: LoggerOptions): Logger {
  let options = initial;
  const write = (line: string) => (options.write ?? writeStderr)(line);
  const now = () => (options.now ?? (() => new Date()))();
  const host = hostname().split('.')[0] ?? 'localhost';
  const emit = (message: string) => {
    const prefix = options.format === 'maillog' ? `${syslogTime(now())} ${host} smtpd[${process.pid}]: ` : '';
    write(`${prefix}${message}\n`);
  };
  return {
    crit: emit,
    warn: emit,
    info: emit,
    debug: (message) => {
      if (options.verbose > 0) emit(message);
    },
    trace: (flag, message) => {
      if (options.trace.has(flag)) emit(message);
    },
    tracing: (flag) => options.trace.has(flag),
    configure: (changes) => {
      options = { ...options, ...changes };
    },
    get options() {
      return options;
    },
  };
}

/** Lines that could not be written since the last one that was, and why the first failed. */
const lost = { lines: 0, why: '' };

/**
 * A line to stderr, which may be a file on a full disk (`smtpd -d
 * 2>>/var/log/smtpd.log`, with /var full: the bad day on which the log
 * matters most). process.stderr would turn the failed write into an
 * 'error' event, which, unheard, kills the process, and so the whole
 * daemon; and a stream that failed once fails every later write, even
 * after room is made. So each line is written with its own write(2): a
 * line that cannot be written is counted and dropped, as syslog drops
 * what it cannot store, and the first line that can be written again
 * is preceded by how many were lost.
 */
function writeStderr(line: string): void {
  try {
    if (lost.lines > 0) {
      writeAll(`warn: smtpd: ${lost.lines} log line(s) lost: could not write to stderr: ${lost.why}\n`);
      lost.lines = 0;
    }
    writeAll(line);
  } catch (err) {
    if (lost.lines++ === 0) lost.why = (err as Error).message;
  }
}

/**
 * The whole text, looping over short writes. A pipe some process of the
 * daemon made non-blocking (they share it) may be full for a moment
 * (EAGAIN): the rest then goes through process.stderr, which waits.
 */
function writeAll(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(2, bytes, done, bytes.length - done);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    process.stderr.write(bytes.subarray(done));
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 3164's timestamp, `Nov  5 04:05:06`, in local time, as /var/log/maillog shows it. */
export function syslogTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = String(date.getDate()).padStart(2, ' ');
  return `${MONTHS[date.getMonth()]} ${day} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A logger that writes nothing, for code run outside the daemon. */
export const silentLogger: Logger = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: () => {} });
