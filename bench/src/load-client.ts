/**
 * A raw-socket SMTP load client: N concurrent sessions of M messages each, or
 * one message per connection with a bounded number of connections at a time.
 *
 * Deliberately small and cheap: plain `net` sockets, no mail library, the
 * message text built once. Every connect and every reply has a timeout, so a
 * stalled server shows up as counted errors, never as a hung benchmark.
 */
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  host: string;
  port: number;
  /** 'sessions': `concurrency` sessions of `messagesPerSession`; 'per-connection': `connections` sessions of one message, `concurrency` at a time. */
  mode: 'sessions' | 'per-connection';
  concurrency: number;
  messagesPerSession: number;
  connections: number;
  /** Send MAIL, RCPT and DATA in one write when the server advertises PIPELINING. */
  pipelining: boolean;
  /** Limit for the connect and for each reply. */
  timeoutMs: number;
  from: string;
  rcpt: string;
  /** Size of each message as sent, before dot-stuffing and the final ".". */
  messageBytes: number;
  helo: string;
  /**
   * Written into every message as `X-Bench-Load: <tag>`, so that the
   * files of this load can be told from late deliveries of an earlier one.
   */
  tag?: string;
  /** Called with the number of 250s to DATA so far, about every `progressMs`. */
  onProgress?: (accepted: number) => void;
  progressMs?: number;
}

export const defaultLoadOptions: Omit<LoadOptions, 'port'> = {
  host: '127.0.0.1',
  mode: 'sessions',
  concurrency: 4,
  messagesPerSession: 100,
  connections: 2000,
  pipelining: false,
  timeoutMs: 10_000,
  from: 'bench@example.com',
  rcpt: 'nobody@localhost',
  messageBytes: 2048,
  helo: 'bench.localhost',
};

export interface LoadResult {
  /** Messages the client meant to send. */
  planned: number;
  /** Messages that reached the final "." (the server had the whole body). */
  sent: number;
  /** 250 replies to the final ".". */
  accepted: number;
  sessions: number;
  /** Sessions that ended with an error before their last message. */
  sessionsFailed: number;
  /** Error events by kind, e.g. "timeout:greeting", "reply:MAIL:452", "connect:ECONNREFUSED". */
  errors: Record<string, number>;
  /** Final "." written -> 250 read, in milliseconds, one entry per accepted message. */
  latenciesMs: number[];
  /** Connect started -> 220 greeting read, in milliseconds, one entry per greeted session. */
  greetingMs: number[];
  /** performance.now() at the start, at the last 250, and when every session had ended. */
  startMs: number;
  lastAcceptMs: number;
  endMs: number;
  /** Whether any session used PIPELINING. */
  pipelined: boolean;
  /** CPU the client itself used (user + system), milliseconds. */
  clientCpuMs: number;
}

export interface Reply {
  code: number;
  lines: string[];
}

export class SmtpError extends Error {
  constructor(readonly kind: string) {
    super(kind);
  }
}

/** One SMTP connection: writes commands, reads (multi-line) replies with a timeout each. */
export class Conn {
  private readonly sock = new Socket();
  private buf = '';
  private partial: string[] = [];
  private readonly ready: Reply[] = [];
  private waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; stage: string } | undefined;
  private failure: SmtpError | undefined;

  constructor(private readonly timeoutMs: number) {
    this.sock.setNoDelay(true);
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e: NodeJS.ErrnoException) => this.fail(`socket:${e.code ?? 'error'}`));
    this.sock.on('close', () => this.fail('closed'));
  }

  connect(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.sock.destroy();
        reject(new SmtpError('timeout:connect'));
      }, this.timeoutMs);
      this.sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new SmtpError(`connect:${e.code ?? 'error'}`));
      });
      this.sock.connect(port, host);
    });
  }

  write(text: string): void {
    this.sock.write(text, 'latin1');
  }

  /** The next reply; rejects with "timeout:<stage>" or "closed:<stage>". */
  read(stage: string): Promise<Reply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(new SmtpError(`${this.failure.kind}:${stage}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new SmtpError(`timeout:${stage}`));
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer, stage };
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    this.buf += d.toString('latin1');
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      this.partial.push(line);
      if (line.length >= 4 && line[3] === '-') continue;
      const reply = { code: Number.parseInt(line.slice(0, 3), 10) || 0, lines: this.partial };
      this.partial = [];
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        clearTimeout(w.timer);
        w.resolve(reply);
      } else {
        this.ready.push(reply);
      }
    }
  }

  private fail(kind: string): void {
    if (this.failure) return;
    this.failure = new SmtpError(kind);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(new SmtpError(`${kind}:${w.stage}`));
    }
  }
}

/** The header that carries LoadOptions.tag. */
export const LOAD_TAG_HEADER = 'X-Bench-Load';

/** Builds message `n` of session `s`: headers + a body padded to exactly `bytes` (CRLF lines, none starting with "."). */
export function buildMessage(opts: Pick<LoadOptions, 'from' | 'rcpt' | 'messageBytes' | 'tag'>, s: number, n: number): string {
  const id = `${String(s).padStart(6, '0')}.${String(n).padStart(6, '0')}`;
  const head =
    `From: <${opts.from}>\r\n` +
    `To: <${opts.rcpt}>\r\n` +
    `Subject: benchmark message ${id}\r\n` +
    `Message-ID: <${id}.${process.pid}@bench.localhost>\r\n` +
    `Date: ${new Date(0).toUTCString().replace('GMT', '+0000')}\r\n` +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=us-ascii\r\n` +
    (opts.tag === undefined ? '' : `${LOAD_TAG_HEADER}: ${opts.tag}\r\n`) +
    `\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog, a benchmark body line.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= opts.messageBytes - 2) body += line;
  const left = opts.messageBytes - head.length - body.length;
  if (left >= 2) body += `${'x'.repeat(left - 2)}\r\n`;
  return head + body;
}

class Stats {
  sent = 0;
  accepted = 0;
  sessionsFailed = 0;
  lastAcceptMs = 0;
  pipelined = false;
  readonly errors: Record<string, number> = {};
  readonly latenciesMs: number[] = [];
  readonly greetingMs: number[] = [];
  error(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }
}

/** Runs one session: greeting, EHLO, `count` messages, QUIT. Never throws; records into `stats`. */
async function session(opts: LoadOptions, s: number, count: number, stats: Stats): Promise<void> {
  const c = new Conn(opts.timeoutMs);
  try {
    const g0 = performance.now();
    await c.connect(opts.host, opts.port);
    const greet = await c.read('greeting');
    if (greet.code !== 220) throw new SmtpError(`reply:greeting:${greet.code}`);
    stats.greetingMs.push(performance.now() - g0);
    c.write(`EHLO ${opts.helo}\r\n`);
    const ehlo = await c.read('EHLO');
    if (ehlo.code !== 250) throw new SmtpError(`reply:EHLO:${ehlo.code}`);
    const pipelining = opts.pipelining && ehlo.lines.some((l) => /^250[- ]PIPELINING\b/i.test(l));
    if (pipelining) stats.pipelined = true;

    for (let n = 0; n < count; n++) {
      const msg = buildMessage(opts, s, n);
      const mail = `MAIL FROM:<${opts.from}>\r\n`;
      const rcpt = `RCPT TO:<${opts.rcpt}>\r\n`;
      let mailR: Reply;
      let rcptR: Reply;
      let dataR: Reply;
      if (pipelining) {
        c.write(mail + rcpt + 'DATA\r\n');
        mailR = await c.read('MAIL');
        rcptR = await c.read('RCPT');
        dataR = await c.read('DATA');
      } else {
        c.write(mail);
        mailR = await c.read('MAIL');
        if (mailR.code !== 250) {
          await recover(c, stats, `reply:MAIL:${mailR.code}`);
          continue;
        }
        c.write(rcpt);
        rcptR = await c.read('RCPT');
        if (rcptR.code !== 250 && rcptR.code !== 251) {
          await recover(c, stats, `reply:RCPT:${rcptR.code}`);
          continue;
        }
        c.write('DATA\r\n');
        dataR = await c.read('DATA');
      }
      if (dataR.code !== 354) {
        const first = mailR.code !== 250 ? `MAIL:${mailR.code}` : rcptR.code >= 300 ? `RCPT:${rcptR.code}` : `DATA:${dataR.code}`;
        await recover(c, stats, `reply:${first}`);
        continue;
      }
      if (mailR.code !== 250 || rcptR.code >= 300) {
        // Pipelined: DATA was accepted although the envelope was not; end it empty.
        c.write('.\r\n');
        await c.read('DOT');
        stats.error(`reply:${mailR.code !== 250 ? `MAIL:${mailR.code}` : `RCPT:${rcptR.code}`}`);
        continue;
      }
      c.write(`${msg}.\r\n`);
      const t0 = performance.now();
      stats.sent++;
      const dot = await c.read('DOT');
      const t1 = performance.now();
      if (dot.code === 250) {
        stats.accepted++;
        stats.latenciesMs.push(t1 - t0);
        stats.lastAcceptMs = t1;
      } else {
        stats.error(`reply:DOT:${dot.code}`);
        if (dot.code === 421) throw new SmtpError('reply:DOT:421-closing');
      }
    }
    c.write('QUIT\r\n');
    try {
      await c.read('QUIT');
    } catch (e) {
      // Some servers close at once after 221; a missing 221 is not worth a failed session.
      if (!(e instanceof SmtpError) || !e.kind.startsWith('closed')) stats.error((e as Error).message);
    }
  } catch (e) {
    stats.error(e instanceof SmtpError ? e.kind : `exception:${(e as Error).message}`);
    stats.sessionsFailed++;
  } finally {
    c.close();
  }
}

/** After a refused command: count it, RSET, carry on (a failed RSET ends the session). */
async function recover(c: Conn, stats: Stats, kind: string): Promise<void> {
  stats.error(kind);
  c.write('RSET\r\n');
  const r = await c.read('RSET');
  if (r.code !== 250) throw new SmtpError(`reply:RSET:${r.code}`);
}

export async function runLoad(partial: Partial<LoadOptions> & { port: number }): Promise<LoadResult> {
  const opts: LoadOptions = { ...defaultLoadOptions, ...partial };
  const stats = new Stats();
  const cpu0 = process.cpuUsage();
  const startMs = performance.now();
  let ticker: NodeJS.Timeout | undefined;
  if (opts.onProgress) {
    const cb = opts.onProgress;
    ticker = setInterval(() => cb(stats.accepted), opts.progressMs ?? 1000);
  }
  let sessions: number;
  let planned: number;
  try {
    if (opts.mode === 'sessions') {
      sessions = opts.concurrency;
      planned = opts.concurrency * opts.messagesPerSession;
      await Promise.all(Array.from({ length: opts.concurrency }, (_, s) => session(opts, s, opts.messagesPerSession, stats)));
    } else {
      sessions = opts.connections;
      planned = opts.connections;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < opts.connections) {
          const s = next++;
          await session(opts, s, 1, stats);
        }
      };
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.connections) }, worker));
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
  const endMs = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return {
    planned,
    sent: stats.sent,
    accepted: stats.accepted,
    sessions,
    sessionsFailed: stats.sessionsFailed,
    errors: stats.errors,
    latenciesMs: stats.latenciesMs,
    greetingMs: stats.greetingMs,
    startMs,
    lastAcceptMs: stats.lastAcceptMs || endMs,
    endMs,
    pipelined: stats.pipelined,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** The p-th percentile (0..100) of unsorted samples, nearest-rank. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
