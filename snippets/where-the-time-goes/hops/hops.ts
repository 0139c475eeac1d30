// Count the requests that cross a process boundary for each message.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MESSAGES = 10;

const dir = mkdtempSync(join(tmpdir(), 'hops-'));
chmodSync(dir, 0o755); // as root, the spool inside goes to _smtpq, who must get through
const mail = join(dir, 'mail');
mkdirSync(mail);
chmodSync(mail, 0o1777); // the agent, running as the recipient, makes its Maildir here
const port = await freePort();
const maildir = `"${mail}/%{user.username}"`;
// -T imsg: every process logs each request it sends (->), receives (<-), and each answer it gets.
const args = ['-d', '-v', '-T', 'imsg', '-D', `port=${port}`, '-D', `maildir=${maildir}`, '-f', 'smtpd.conf', '--spool', join(dir, 'spool')];
console.log(`$ smtpd ${args.map((a) => (a.includes('"') ? `'${a}'` : a)).join(' ')}`);

const daemon = spawn('smtpd', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
const exited = new Promise<number | string>((done) => daemon.once('exit', (code, signal) => done(code ?? signal ?? -1)));
const log: string[] = [];
let partial = '';
daemon.stderr.setEncoding('utf8').on('data', (text: string) => {
  const lines = (partial + text).split('\n');
  partial = lines.pop() ?? '';
  log.push(...lines);
});
let failed: Error | undefined;
daemon.once('error', (err) => (failed = err));
process.on('exit', () => {
  try {
    process.kill(-daemon.pid!, 'SIGKILL'); // the whole process group, if anything is left
  } catch {
    // gone already: the normal case
  }
  rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(1));

/** `imsg: smtp -> queue: queue.message.commit`: a request, as its sender logs it. */
const REQUEST = /^imsg: (.+) -> (.+): (\S+)$/;
/** `imsg: smtp <- queue: queue.message.commit (answer)`: its answer, as the sender logs it. */
const ANSWER = /^imsg: (.+) <- (.+): (\S+) \(answer\)$/;
/** `imsg: queue -> scheduler: scheduler.envelopes.add (notice)`: a request that wants no answer. */
const NOTICE = /^imsg: (.+) -> (.+): (\S+) \(notice\)$/;
const deliveries = () => log.filter((l) => / mda delivery .* result=Ok /.test(l)).length;
/** True when every request logged so far has had its answer: nothing is on its way. */
const settled = () => log.filter((l) => REQUEST.test(l)).length === log.filter((l) => ANSWER.test(l)).length;

await waitUntil('the daemon is up', () => log.some((l) => /processes started/.test(l)));
const up = log.length;
let replies = 0; // how many replies the client has waited for
const smtp = await session();
await smtp.say('EHLO client.example.org');

// The warm-up: the first DATA makes smtp ask the queue for two message
// ids (one now, one spare for the next DATA), and the first delivery
// starts the agent. Neither happens again for the next messages: each
// commit's answer brings the id the next DATA will use.
await smtp.send(1);
await waitUntil('the warm-up delivered', () => deliveries() === 1 && settled());
const start = log.length;
const repliesBefore = replies;

await smtp.send(MESSAGES);
await waitUntil(`${MESSAGES} more delivered`, () => deliveries() === 1 + MESSAGES && settled());
const waitedFor = replies - repliesBefore;
await smtp.say('QUIT');
await waitUntil('the session closed', () => log.some((l) => /smtp disconnected/.test(l)));
const end = log.length;
process.kill(daemon.pid!, 'SIGTERM'); // what the shutdown sends is not counted
console.log(`daemon exited with status ${await exited}`);
console.log(`${readdirSync(join(mail, 'nobody', 'new')).length} messages in Maildir/new`);

// Requests by the line their sender logged, in the order each kind first appears.
const first = new Map<string, number>();
const next = new Map<string, number>();
let requests = 0;
let notices = 0;
let answers = 0;
log.slice(up, end).forEach((line, i) => {
  const measured = up + i >= start;
  const notice = NOTICE.test(line);
  if (notice || REQUEST.test(line)) {
    for (const counts of [first, next]) if (!counts.has(line)) counts.set(line, 0);
    const counts = measured ? next : first;
    counts.set(line, counts.get(line)! + 1);
    if (measured && notice) notices++;
    else if (measured) requests++;
  }
  if (measured && ANSWER.test(line)) answers++;
});
console.log(`\nrequests sent for the first message, then for ${MESSAGES} more in the same session:`);
console.log(`  first  next ${MESSAGES}  per message  request`);
for (const [line, n] of next) {
  console.log(`  ${String(first.get(line)).padStart(5)}  ${String(n).padStart(7)}  ${String(n / MESSAGES).padStart(11)}  ${line}`);
}
console.log(`\nper message, after the first: ${requests / MESSAGES} requests, ${answers / MESSAGES} answers and ${notices / MESSAGES} notice crossed a`);
console.log(`process boundary, ${(requests + answers + notices) / MESSAGES} in all; the client waited for ${waitedFor / MESSAGES} replies (MAIL, RCPT, DATA, the dot)`);

/** Waits until `ready()` is true; gives up after 20 s, or as soon as smtpd is gone. */
async function waitUntil(what: string, ready: () => boolean): Promise<void> {
  for (let waited = 0; !ready(); waited += 20) {
    if (failed) throw new Error(`cannot run smtpd: ${failed.message}`);
    if (waited > 20_000 || daemon.exitCode !== null) throw new Error(`waited in vain for ${what}; the log:\n${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** One SMTP session, one command and one reply at a time (no pipelining, as in the benchmark). */
async function session() {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  let buffer = '';
  let waiting: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  const check = () => {
    // A reply ends with a line whose code is followed by a space: "250 ...", not "250-...".
    const end = /^(\d{3}) .*\r\n/m.exec(buffer);
    if (!end || !waiting) return;
    buffer = buffer.slice(end.index + end[0].length);
    const { resolve, reject } = waiting;
    waiting = undefined;
    replies++;
    if (/^[23]/.test(end[1]!)) resolve(end[0].trimEnd());
    else reject(new Error(`refused: ${end[0].trimEnd()}`));
  };
  socket.on('data', (chunk: string) => { buffer += chunk; check(); });
  socket.on('error', (err) => waiting?.reject(err));
  const reply = () => new Promise<string>((resolve, reject) => { waiting = { resolve, reject }; check(); });
  const say = async (line: string) => { const answer = reply(); socket.write(`${line}\r\n`); return answer; };
  await reply(); // 220 greeting
  return {
    say,
    /** Sends `count` messages for nobody, one after the other. */
    async send(count: number): Promise<void> {
      for (let i = 1; i <= count; i++) {
        await say('MAIL FROM:<alice@example.org>');
        await say('RCPT TO:<nobody@example.org>');
        await say('DATA');
        await say(`Subject: message ${i}\r\n\r\nOne of ${count}.\r\n.`);
      }
    },
  };
}
