/**
 * Fuzzes the SMTP engine in-process: sessions made of valid commands and
 * messages, then mutated, sent to an engine on 127.0.0.1 over TCP in
 * chunks cut at random places. Each case is run twice, cut differently.
 *
 *     node --import tsx impl/fuzz/smtp.ts [--seed N] [--cases N] [--seconds N] [--case N]
 *
 * What must hold, whatever the client sends:
 * - no uncaught exception or unhandled rejection, no `smtp internal error`;
 * - every reply is well formed: three digits, `-` or space, CRLF, and
 *   only the last line of a reply has the space;
 * - the session answers each command, and closes when the client does,
 *   within a few seconds;
 * - a message the engine accepted is stored as the client sent it, after
 *   dot-unstuffing, up to CRLF "." CRLF (bare LF stored as CRLF);
 * - a message with NUL, or over the size limit, is refused;
 * - the same input, cut into chunks differently, gets the same replies.
 *
 * The driver never breaks the pipelining rules on purpose (a command that
 * must end a batch is sent last and its reply awaited), since a batch that
 * breaks them gets answers that depend on how TCP cut it, by design.
 * Failing cases are written to impl/fuzz/out/ as the raw input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { IncomingMessage } from '../src/queue/backend.ts';
import type { EnvelopeId, MessageId } from '../src/queue/types.ts';
import { createSmtpServer, type Hooks, type SmtpListener, type SmtpLimits } from '../src/smtp/index.ts';
import { caseRandom, mutateBytes, type Random, splitPoints } from './random.ts';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    cases: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '60' },
    case: { type: 'string' },
    parallel: { type: 'string', default: '4' },
    verbose: { type: 'boolean', default: false },
  },
});
const SEED = Number(args.seed);
const OUT = join(import.meta.dirname, 'out');
/** A batch not answered in this long, or a session not closed after the client's end, is a hang. */
const HANG_MS = 5000;

// ---------------------------------------------------------------- the engine

interface Stored { chunks: Buffer[]; committed: boolean }

/** A queue in memory, as impl/test/smtp/helpers.ts has (which needs vitest). */
function memoryQueue() {
  const messages: Stored[] = [];
  let next = 0x1a2b3c00;
  return {
    messages,
    queue: {
      async createMessage(): Promise<IncomingMessage> {
        const id = next++ as MessageId;
        const stored: Stored = { chunks: [], committed: false };
        messages.push(stored);
        return {
          id,
          async write(chunk) { stored.chunks.push(Buffer.from(chunk)); },
          async commit(envelopes) {
            stored.committed = true;
            return envelopes.map((e, i) => ({ ...e, id: ((BigInt(id) << 32n) | BigInt(i + 1)) as EnvelopeId, messageId: id }));
          },
          async abort() {},
        };
      },
    },
  };
}

interface EngineSetup {
  limits: Partial<SmtpLimits>;
  listener: SmtpListener;
  hooks: Hooks;
  /** Content is stored as sent (no submission fields added). */
  checkContent: boolean;
}

function engineSetup(r: Random): EngineSetup {
  const limits: Partial<SmtpLimits> = { authFailureDelayMs: 0 };
  if (r.chance(0.3)) limits.maxMessageSize = r.pick([10, 200, 3000, 20000]);
  if (r.chance(0.2)) limits.maxRecipients = r.range(1, 3);
  if (r.chance(0.2)) limits.maxMessages = r.range(1, 2);
  const listener: SmtpListener = { auth: r.pick(['optional', 'optional', 'required', undefined] as const), authPlaintext: true };
  if (listener.auth === undefined) delete listener.auth;
  if (r.chance(0.2)) listener.dsn = false;
  const submission = r.chance(0.15);
  if (submission) listener.submission = true;
  const hooks: Hooks = {};
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  if (r.chance(0.3)) {
    hooks['rcpt-to'] = [async ({ param }) => {
      await tick();
      if (param.startsWith('nobody')) return { decision: 'reject', reply: { code: 550, enhanced: '5.1.1', lines: ['no such user'] } };
      return { decision: 'accept', dispatcher: 'local' };
    }];
    hooks['mail-from'] = [async ({ param }) => (param.includes('spam') ? { decision: 'reject', reply: { code: 550, lines: ['go\naway'] } } : { decision: 'proceed' })];
  }
  if (r.chance(0.3)) hooks['data-line'] = [async () => { if (r.chance(0.01)) await tick(); return { decision: 'proceed' }; }];
  return { limits, listener, hooks, checkContent: !submission };
}

// ---------------------------------------------------------------- inputs

const CRLF = '\r\n';
const DOMAINS = ['example.org', 'mx.test', 'localhost', '[127.0.0.1]', '[IPv6:::1]', 'a.b', 'exa_mple.org', 'x', 'bücher.de', '-bad-.org', ''];
const LOCALS = ['alice', 'bob', 'nobody', 'spam', '"quoted local"', 'a.b+tag', 'üser', 'x'.repeat(70), '', 'postmaster', '"a\\"b"'];

function address(r: Random): string {
  if (r.chance(0.7)) return `<${r.pick(['alice', 'bob', 'a.b+tag'])}@${r.pick(['example.org', 'mx.test'])}>`;
  if (r.chance(0.1)) return r.pick(['<>', '<postmaster>', '<@a.org:bob@b.org>', 'bob@example.org', '<bob@example.org', '<bob@@example.org>', '< bob@example.org >']);
  return `<${r.pick(LOCALS)}@${r.pick(DOMAINS)}>`;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function authLines(r: Random): string[] {
  const user = r.pick(['alice', 'alice', 'boom', 'eve', '', 'x'.repeat(300)]);
  const pass = r.pick(['secret', 'secret', 'wrong', '']);
  switch (r.int(6)) {
    case 0: return [`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`];
    case 1: return ['AUTH PLAIN', b64(`${r.pick(['', 'authz'])}\0${user}\0${pass}`)];
    case 2: return ['AUTH LOGIN', b64(user), b64(pass)];
    case 3: return [`AUTH LOGIN ${b64(user)}`, b64(pass)];
    case 4: return ['AUTH LOGIN', '*'];
    default: return [`AUTH ${r.pick(['PLAIN', 'LOGIN', 'CRAM-MD5', 'plain'])} ${r.pick(['=', '*', '!!!!', 'AAA', b64('\0\0'), ''])}`];
  }
}

/** One line of message content, before stuffing. */
function contentLine(r: Random): string {
  switch (r.int(16)) {
    case 0: return '';
    case 1: return '.';
    case 2: return '..';
    case 3: return '.x';
    case 4: return `Subject: ${'s'.repeat(r.range(0, 40))}`;
    case 5: return r.chance(0.1) ? Array(r.range(98, 101)).fill('Received: from x by y').join('\r\n') : 'Received: from x by y';
    case 6: return 'é8bit ÿ';
    case 7: return 'A'.repeat(r.pick([998, 999, 1000, 5000, 13000]));
    case 8: return 'nul\0here';
    case 9: return 'bare\rcr';
    case 10: return '.\rX';
    case 11: return 'Date: Mon, 1 Jan 2024 00:00:00 +0000';
    case 12: return 'QUIT';
    case 13: return ' folded continuation';
    default: return `line ${r.int(1000)}`;
  }
}

/** A message body as sent: mostly stuffed, lines ended by CRLF, sometimes not, and the end. */
function messageText(r: Random): string {
  const lines: string[] = [];
  const n = r.chance(0.1) ? 0 : r.range(1, 12);
  for (let i = 0; i < n; i++) {
    let line = contentLine(r);
    if (line.startsWith('.') && r.chance(0.8)) line = `.${line}`;
    const end = r.chance(0.9) ? CRLF : r.pick(['\n', '\r', '\r\r\n', '\n.\n', '\r\n.\n', '\n.\r\n']);
    lines.push(line + end);
  }
  return lines.join('') + r.pick(['.\r\n', '.\r\n', '.\r\n', '.\n', '\n.\r\n']);
}

function mailCommand(r: Random): string {
  let line = `MAIL FROM:${address(r)}`;
  const params = ['SIZE=100', 'SIZE=99999999999', 'SIZE=x', 'BODY=8BITMIME', 'BODY=7BIT', 'SMTPUTF8', 'RET=HDRS', 'RET=FULL', 'ENVID=a+2Bb', 'ENVID=+0A', 'AUTH=<>', 'FOO=bar', '=', 'SIZE'];
  for (let i = r.int(3); i > 0; i--) line += ` ${r.pick(params)}`;
  return line;
}

function rcptCommand(r: Random): string {
  let line = `RCPT TO:${address(r)}`;
  const params = ['NOTIFY=SUCCESS,FAILURE', 'NOTIFY=NEVER', 'NOTIFY=NEVER,DELAY', 'ORCPT=rfc822;bob@x.org', 'ORCPT=rfc822;', 'ORCPT=;+41', 'X=1'];
  for (let i = r.int(2); i > 0; i--) line += ` ${r.pick(params)}`;
  return line;
}

/** A plausible session: greeting, maybe AUTH, transactions, odd commands, QUIT. */
function sessionText(r: Random): string {
  const out: string[] = [];
  const say = (line: string) => out.push(line + (r.chance(0.95) ? CRLF : '\n'));
  say(`${r.pick(['EHLO', 'EHLO', 'EHLO', 'HELO', 'ehlo', 'LHLO'])} ${r.chance(0.7) ? 'client.test' : r.pick(DOMAINS)}`);
  if (r.chance(0.4)) (r.chance(0.5) ? [`AUTH PLAIN ${b64('\0alice\0secret')}`] : authLines(r)).forEach(say);
  for (let t = r.range(0, 3); t > 0; t--) {
    if (r.chance(0.2)) say(r.pick(['NOOP', 'HELP', 'RSET', 'VRFY bob', 'EXPN list', 'STARTTLS', 'NOOP x', `EHLO ${r.pick(DOMAINS)}`, 'XYZZY', '']));
    say(mailCommand(r));
    for (let n = r.range(0, 4); n > 0; n--) say(rcptCommand(r));
    if (r.chance(0.1)) say('RSET');
    say(r.pick(['DATA', 'DATA', 'DATA', 'data', 'DATA x']));
    out.push(messageText(r));
  }
  if (r.chance(0.7)) say(r.pick(['QUIT', 'QUIT', 'quit', 'QUIT now']));
  return out.join('');
}

function caseInput(r: Random): Buffer {
  let input: Buffer = Buffer.from(sessionText(r), 'utf8');
  if (r.chance(0.5)) input = mutateBytes(r, input);
  return input;
}

// ---------------------------------------------------------------- the model

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/**
 * The message from `start` (just after DATA's line end) as RFC 5321 4.5.2
 * reads it, written independently of dot-reader.ts: lines end at LF (a CR
 * before it is part of the line end); the message ends at a "." line ended
 * by CRLF after a line ended by CRLF; a leading dot is removed from a line
 * with other characters on it; lines are stored with CRLF. One departure
 * from RFC 5321, which dot-reader.ts makes on purpose and its tests pin: a
 * dot followed by a bare CR is kept (`.\rX` is stored as sent; 6.8 and the
 * RFC would store `\rX`).
 */
function modelMessage(buf: Buffer, start: number): { end: number; content: Buffer } | undefined {
  const out: Buffer[] = [];
  let p = start;
  let afterCrlf = true;
  for (;;) {
    const lf = buf.indexOf(LF, p);
    if (lf < 0) return undefined;
    const hadCr = lf > p && buf[lf - 1] === CR;
    let body = buf.subarray(p, hadCr ? lf - 1 : lf);
    if (afterCrlf && hadCr && body.length === 1 && body[0] === DOT) return { end: lf + 1, content: Buffer.concat(out) };
    if (body.length > 1 && body[0] === DOT && body[1] !== CR) body = body.subarray(1);
    out.push(body, Buffer.from(CRLF));
    afterCrlf = hadCr;
    p = lf + 1;
  }
}

/**
 * The content as the engine stores it: a message whose header section
 * ends at a line that is not a field, with no blank line before it, gets
 * that blank line (RFC 5322 2.1: the body follows an empty line). A field
 * is a name of printable ASCII other than `:`, then `:`, with spaces or
 * tabs allowed before the colon (RFC 5322 4.5.3); a line that starts with
 * a space or a tab continues the field before it.
 */
function modelStored(content: Buffer): Buffer {
  let p = 0;
  while (p < content.length) {
    const c = content[p]!;
    if (c === CR || c === LF) return content;
    if (c !== 0x20 && c !== 0x09) {
      let i = p;
      while (i < content.length && content[i]! > 0x20 && content[i]! < 0x7f && content[i] !== 0x3a) i++;
      const named = i > p;
      while (named && i < content.length && (content[i] === 0x20 || content[i] === 0x09)) i++;
      if (!named || content[i] !== 0x3a) return Buffer.concat([content.subarray(0, p), Buffer.from(CRLF), content.subarray(p)]);
    }
    const lf = content.indexOf(LF, p);
    if (lf < 0) return content;
    p = lf + 1;
  }
  return content;
}

/**
 * A stored message without the engine's Received: field, which leaves
 * with the first content (or alone, for an empty message). The field ends
 * with `;` CRLF TAB and the date on a line of its own.
 */
function withoutReceived(chunks: Buffer[]): Buffer {
  const all = Buffer.concat(chunks);
  const semicolon = all.indexOf(';\r\n\t');
  return semicolon < 0 ? all : all.subarray(all.indexOf(CRLF, semicolon + 3) + 2);
}

const KNOWN = new Set(['HELO', 'EHLO', 'STARTTLS', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'HELP', 'VRFY', 'EXPN', 'QUIT']);
const PIPELINABLE = new Set(['MAIL', 'RCPT', 'RSET', 'HELP']);

/** The verb as the engine cuts it: up to the first space, ASCII letters in capitals. */
function verbOf(line: Buffer): string {
  const text = line.toString('latin1');
  const space = text.indexOf(' ');
  return (space < 0 ? text : text.slice(0, space)).replace(/[a-z]+/g, (l) => l.toUpperCase());
}

/** A command that must be the last of its batch (RFC 2920), or any known command without EHLO. */
function endsBatch(line: Buffer, esmtp: boolean): boolean {
  const verb = verbOf(line);
  return KNOWN.has(verb) && !(esmtp && PIPELINABLE.has(verb));
}

// ---------------------------------------------------------------- the driver

interface Transcript {
  replies: string[];
  /** Committed messages' content, without the engine's Received: field. */
  messages: string[];
  problems: string[];
  logs: string[];
}

class Client {
  raw = '';
  private parsed = 0;
  readonly replies: string[] = [];
  ended = false;
  private wake: (() => void) | undefined;

  constructor(readonly socket: Socket, readonly problems: string[]) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.raw += d;
      this.parse();
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  /** Cuts whole replies out of what has arrived, checking each line's form. */
  private parse(): void {
    for (;;) {
      const rest = this.raw.slice(this.parsed);
      const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3}) [^\r\n]*\r\n/.exec(rest);
      if (m) {
        const lines = m[0].split('\r\n').slice(0, -1);
        if (lines.some((l) => l.slice(0, 3) !== m[2])) this.problems.push(`reply with mixed codes: ${JSON.stringify(m[0])}`);
        if (/[^\t\r\n\x20-\x7e]/.test(m[0])) this.problems.push(`reply with a byte outside printable ASCII: ${JSON.stringify(m[0])}`);
        this.replies.push(m[0]);
        this.parsed += m[0].length;
        continue;
      }
      // What is left must be the start of a well-formed reply.
      if (rest !== '' && !/^(?:\d{3}-[^\r\n]*\r\n)*(?:\d{0,3}|\d{3}[ -][^\r\n]*\r?)$/.test(rest)) {
        this.problems.push(`malformed reply: ${JSON.stringify(rest.slice(0, 200))}`);
        this.parsed = this.raw.length;
      }
      return;
    }
  }

  /** Waits until `count` replies have arrived in all, or the server closed; false after HANG_MS. */
  async until(count: number): Promise<boolean> {
    const deadline = Date.now() + HANG_MS;
    while (this.replies.length < count && !this.ended) {
      if (Date.now() > deadline) return false;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return true;
  }

  async closed(): Promise<boolean> {
    return this.until(Infinity);
  }
}

/** Writes `bytes` in the chunks the split points make, letting the engine read each before the next. */
async function write(socket: Socket, bytes: Buffer, points: number[]): Promise<void> {
  let from = 0;
  for (const to of [...points, bytes.length]) {
    if (to <= from) continue;
    socket.write(bytes.subarray(from, to));
    from = to;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Where the next batch ends, and how many replies it gets (the driver knows the mode from the last reply). */
function nextBatch(input: Buffer, pos: number, mode: 'command' | 'auth' | 'data', esmtp: boolean) {
  let end = pos;
  let expected = 0;
  let message: { end: number; content: Buffer } | undefined;
  if (mode === 'data') {
    const m = modelMessage(input, pos);
    if (!m) return { end: input.length, expected: 0, message };
    message = m;
    end = m.end;
    expected = 1;
  } else if (mode === 'auth') {
    const lf = input.indexOf(LF, pos);
    return lf < 0 ? { end: input.length, expected: 0, message } : { end: lf + 1, expected: 1, message };
  }
  // Commands: up to the one that must end the batch.
  while (end < input.length) {
    const lf = input.indexOf(LF, end);
    if (lf < 0) return { end: input.length, expected, message };
    const line = input.subarray(end, lf > end && input[lf - 1] === CR ? lf - 1 : lf);
    end = lf + 1;
    expected += 1;
    if (endsBatch(line, esmtp)) break;
  }
  return { end, expected, message };
}

/** How often each reply code was seen, over the run: to see that the cases reach past the first command. */
const codeCounts = new Map<string, number>();

async function runSession(input: Buffer, setup: EngineSetup, r: Random, blast = false): Promise<Transcript> {
  const store = memoryQueue();
  const logs: string[] = [];
  const problems: string[] = [];
  const smtp = createSmtpServer({
    hostname: 'mx.test',
    queue: store.queue,
    logger: { info: (l) => logs.push(l), warn: (l) => logs.push(`warn: ${l}`) },
    listener: setup.listener,
    hooks: setup.hooks,
    limits: setup.limits,
    now: () => new Date(0),
    authenticate: async (user, password) => {
      if (user === 'boom') throw new Error('table unavailable');
      return user === 'alice' && password === 'secret';
    },
  });
  const server = createServer();
  smtp.listen(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const client = new Client(socket, problems);
  const expectedMessages: { content: Buffer; reply: number }[] = [];
  try {
    if (!(await client.until(1))) problems.push('no greeting');
    let pos = 0;
    let esmtp = false;
    if (blast) {
      // Everything at once, pipelining rules or not: only the oracles that do not depend on timing hold.
      await write(socket, input, splitPoints(r, input.length));
      pos = input.length;
    }
    while (pos < input.length && !client.ended) {
      const last = client.replies.at(-1) ?? '';
      const mode = last.startsWith('354') ? 'data' : last.startsWith('334') ? 'auth' : 'command';
      const before = client.replies.length;
      const batch = nextBatch(input, pos, mode, esmtp);
      const bytes = input.subarray(pos, batch.end);
      await write(socket, bytes, splitPoints(r, bytes.length));
      if (!(await client.until(before + batch.expected))) {
        problems.push(`hang: ${batch.expected} replies expected to a batch of ${bytes.length} bytes in ${mode} mode, got ${client.replies.length - before}`);
        break;
      }
      // Follow EHLO/HELO to know whether the engine offers pipelining now.
      let at = pos;
      let k = before;
      if (batch.message) {
        expectedMessages.push({ content: batch.message.content, reply: k });
        at = batch.message.end;
        k++;
      }
      if (mode === 'command' || batch.message) {
        while (at < batch.end && k < client.replies.length) {
          const lf = input.indexOf(LF, at);
          if (lf < 0) break;
          const verb = verbOf(input.subarray(at, lf));
          const ok = client.replies[k]!.startsWith('250');
          if (ok && verb === 'EHLO') esmtp = true;
          if (ok && verb === 'HELO') esmtp = false;
          at = lf + 1;
          k++;
        }
      }
      pos = batch.end;
    }
    socket.end();
    if (!(await client.closed())) problems.push('hang: the session did not close after the client ended its side');
  } finally {
    socket.destroy();
    await Promise.race([smtp.close(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  }
  for (const reply of client.replies) codeCounts.set(reply.slice(0, 3), (codeCounts.get(reply.slice(0, 3)) ?? 0) + 1);
  for (const line of logs) if (line.includes('internal error')) problems.push(`log: ${line}`);
  if (client.raw !== '' && !client.raw.endsWith('\r\n')) problems.push(`output does not end with CRLF: ${JSON.stringify(client.raw.slice(-80))}`);

  // The messages: each accepted one stored exactly, each refused one refused for a reason the model sees too.
  const committed = store.messages.filter((m) => m.committed);
  let c = 0;
  const maxSize = setup.limits.maxMessageSize ?? 35 * 1024 * 1024;
  for (const { content, reply } of expectedMessages) {
    const answer = client.replies[reply];
    if (answer === undefined) continue;
    const code = answer.slice(0, 3);
    if (code === '250') {
      const stored = committed[c++];
      if (!stored) problems.push('250 at the end of DATA, but nothing committed');
      else if (setup.checkContent) {
        const got = withoutReceived(stored.chunks);
        const want = modelStored(content);
        if (!got.equals(want)) problems.push(`stored content differs from the model:\n  sent-model ${JSON.stringify(want.toString('latin1').slice(0, 300))}\n  stored     ${JSON.stringify(got.toString('latin1').slice(0, 300))}`);
      }
      if (content.includes(0)) problems.push('a message with NUL was accepted');
      if (content.length > maxSize) problems.push(`a message of ${content.length} octets was accepted over the limit of ${maxSize}`);
    } else if (code === '554' && !content.includes(0) && !answer.includes('Loop detected')) problems.push(`554 without NUL: ${answer}`);
    else if (code === '552' && content.length <= maxSize && !answer.includes('exceeds')) problems.push(`552 for ${content.length} octets under ${maxSize}`);
  }
  if (!blast && c !== committed.length) problems.push(`${committed.length} messages committed, ${c} accepted with 250`);
  return {
    replies: client.replies,
    // The Message-ID a submission listener adds is random.
    messages: committed.map((m) => withoutReceived(m.chunks).toString('latin1').replace(/^Message-ID: <[0-9a-f]+@/m, 'Message-ID: <@')),
    problems,
    logs,
  };
}

// ---------------------------------------------------------------- the run

const processProblems: string[] = [];
process.on('uncaughtException', (err) => processProblems.push(`uncaught exception: ${err.stack ?? err}`));
process.on('unhandledRejection', (err) => processProblems.push(`unhandled rejection: ${err instanceof Error ? err.stack : String(err)}`));

async function runCase(n: number): Promise<string[]> {
  const r = caseRandom(SEED, n);
  const setup = engineSetup(r);
  const input = caseInput(r);
  if (r.chance(0.15)) {
    const blast = await runSession(input, setup, r, true);
    if (blast.problems.length > 0) {
      mkdirSync(OUT, { recursive: true });
      writeFileSync(join(OUT, `smtp-${SEED}-${n}.bin`), input);
    }
    return blast.problems.map((p) => `(all at once) ${p}`);
  }
  const first = await runSession(input, setup, r);
  const second = await runSession(input, setup, r);
  const problems = [...first.problems, ...second.problems];
  if (JSON.stringify(first.replies) !== JSON.stringify(second.replies)) {
    let i = 0;
    while (first.replies[i] === second.replies[i]) i++;
    problems.push(`replies differ with the input cut differently, from reply ${i}:\n  ${JSON.stringify(first.replies.slice(i, i + 3))}\n  ${JSON.stringify(second.replies.slice(i, i + 3))}`);
  } else if (JSON.stringify(first.messages) !== JSON.stringify(second.messages)) {
    problems.push(`stored messages differ with the input cut differently:\n  ${JSON.stringify(first.messages).slice(0, 600)}\n  ${JSON.stringify(second.messages).slice(0, 600)}`);
  }
  if (problems.length > 0 || args.verbose) {
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, `smtp-${SEED}-${n}.bin`), input);
    if (args.verbose) console.log(first.replies.join(''), first.logs.join('\n'));
  }
  return problems;
}

async function main(): Promise<void> {
  const deadline = Date.now() + Number(args.seconds) * 1000;
  const only = args.case === undefined ? undefined : Number(args.case);
  const total = only === undefined ? Number(args.cases) : 1;
  let next = only ?? 0;
  let ran = 0;
  let failed = 0;
  const worker = async () => {
    while (ran < total && Date.now() < deadline) {
      const n = next++;
      ran++;
      const problems = await runCase(n);
      problems.push(...processProblems.splice(0));
      if (problems.length > 0) {
        failed++;
        console.log(`case ${n} (seed ${SEED}):\n  ${problems.join('\n  ')}`);
      }
    }
  };
  await Promise.all(Array.from({ length: only === undefined ? Number(args.parallel) : 1 }, worker));
  console.log(`reply codes seen: ${[...codeCounts].sort().map(([c, k]) => `${c}:${k}`).join(' ')}`);
  console.log(`smtp fuzz: seed ${SEED}, ${ran} cases (each run twice), ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
