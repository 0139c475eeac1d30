// Start the daemon, send it one message, watch it delivered, list the processes, stop it.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'privsep-'));
chmodSync(dir, 0o755); // as root, the spool inside goes to _smtpq, who must get through
const spool = join(dir, 'spool');
const mail = join(dir, 'mail');
mkdirSync(mail);
chmodSync(mail, 0o1777); // each recipient's agent, running as that user, makes its own Maildir here
const port = await freePort();
const maildir = `"${mail}/%{user.username}"`; // a macro's value is a string only if it is quoted
const args = ['-d', '-v', '-D', `port=${port}`, '-D', `maildir=${maildir}`, '-f', 'smtpd.conf', '--spool', spool];

console.log(`$ smtpd ${args.map((a) => (a.includes('"') ? `'${a}'` : a)).join(' ')}`);
// A process group of its own, so that cleaning up can reach every process.
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

// Whatever happens (an error, Ctrl-C), leave no process and no file behind.
process.on('exit', () => {
  try {
    process.kill(-daemon.pid!, 'SIGKILL');
  } catch {
    // the group is gone: the normal case
  }
  rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(1));

await waitFor(/processes started/);
console.log(`spool: mode ${(statSync(spool).mode & 0o777).toString(8).padStart(4, '0')}`);

console.log('\none message for nobody@example.org, by SMTP:');
console.log(`  ${await sendOne()}`);
// The scheduler asks the queue, the queue the dispatcher, the dispatcher an agent.
await waitFor(/ mda delivery /);
console.log('delivered by an agent the parent started for the recipient:');
for (const line of log.filter((l) => / mda delivery |delivery agent for/.test(l))) console.log(`  ${line}`);
console.log(`  ${join(mail, 'nobody', 'new')}: ${readdirSync(join(mail, 'nobody', 'new')).length} message`);

// The children log "<name> process ready (pid N)" one after the other, in start order.
const order = new Map<number, number>([[daemon.pid!, 0]]);
for (const line of log) {
  const ready = /process ready \(pid (\d+)\)/.exec(line);
  if (ready) order.set(Number(ready[1]), order.size);
}
const ps = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,args='], { encoding: 'utf8' });
const titles = ps.split('\n').flatMap((row) => {
  const m = /^\s*(\d+)\s+(\d+)\s+(smtpd: .*)$/.exec(row);
  return m && Number(m[2]) === daemon.pid ? [{ pid: Number(m[1]), title: m[3]!.trim() }] : [];
});
titles.sort((a, b) => (order.get(a.pid) ?? 99) - (order.get(b.pid) ?? 99));
console.log(`\n${titles.length} processes, in the order they started:`);
for (const { title } of titles) console.log(`  ${title}`);
await waitFor(/smtp disconnected/);

process.kill(daemon.pid!, 'SIGTERM');
const status = await exited;
console.log(`\nafter SIGTERM, smtpd exited with status ${status}; its last lines:`);
for (const line of log.slice(log.findIndex((l) => l.includes('SIGTERM received')))) console.log(`  ${line}`);

/** Resolves when a log line matches; gives up after 15 s, or as soon as smtpd is gone. */
async function waitFor(pattern: RegExp): Promise<void> {
  for (let waited = 0; !log.some((l) => pattern.test(l)); waited += 50) {
    if (failed) throw new Error(`cannot run smtpd: ${failed.message}`);
    if (waited > 15_000 || daemon.exitCode !== null) throw new Error(`no ${pattern} in the log:\n${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A minimal SMTP client: one command, one reply, in turn. Returns the reply to the final dot. */
async function sendOne(): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  let buffer = '';
  const reply = () => new Promise<string>((resolve, reject) => {
    const check = () => {
      // A reply ends with a line whose code is followed by a space: "250 ...", not "250-...".
      const end = /^\d{3} .*\r\n/m.exec(buffer);
      if (!end) return;
      const text = buffer.slice(0, end.index + end[0].length);
      buffer = buffer.slice(text.length);
      socket.off('data', onData);
      resolve(text.trimEnd().split('\r\n').pop()!);
    };
    const onData = (chunk: string) => { buffer += chunk; check(); };
    socket.on('data', onData);
    socket.once('error', reject);
    check();
  });
  const say = async (line: string) => { socket.write(`${line}\r\n`); return reply(); };

  await reply(); // 220 greeting
  await say('EHLO client.example.org');
  await say('MAIL FROM:<alice@example.org>');
  await say('RCPT TO:<nobody@example.org>');
  await say('DATA');
  const accepted = await say('Subject: hello\r\n\r\nOne message, eight processes.\r\n.');
  await say('QUIT');
  socket.end();
  return accepted;
}
