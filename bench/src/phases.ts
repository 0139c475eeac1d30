/**
 * node --import tsx bench/src/phases.ts [--messages 100] [--rounds 3] [--warmup 2000] [--queue fs|log]
 *
 * One session against our server, one message at a time, timing each step
 * of the SMTP dialogue (MAIL, RCPT, DATA, the final dot) and the delivery
 * (250 -> file in Maildir/new), to show where the latency of N=1 goes.
 * The first `warmup` messages (as many as the benchmark's warm-up) are
 * sent in rounds that are not printed: until V8 has compiled the hot
 * functions, every step is two to three times slower.
 */
import { rmSync, watch } from 'node:fs';
import { Socket } from 'node:net';
import { commandLine } from './command-line.ts';
import { percentile } from './load-client.ts';
import { moveToCur, sleep } from './proc.ts';
import { oursWith } from './servers/ours.ts';

const USAGE = 'usage: node --import tsx bench/src/phases.ts [--messages 100] [--rounds 3] [--warmup 2000] [--queue fs|log]\n';

const args = commandLine({
  messages: { type: 'string' }, rounds: { type: 'string' }, warmup: { type: 'string' }, queue: { type: 'string' },
}, USAGE);
const M = Number(args.messages ?? 100);
const warmRounds = Math.ceil(Number(args.warmup ?? 2000) / M);
const srv = await oursWith(args.queue ?? 'fs').start();
const body = `Subject: phases\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(26);
try {
  for (let round = -warmRounds; round < Number(args.rounds ?? 3); round++) {
    moveToCur(srv.maildirNew);
    const delivered = new Map<string, number>();
    const watcher = watch(srv.maildirNew, (_e, name) => {
      if (name && !delivered.has(name)) delivered.set(name, performance.now());
    });
    const sock = new Socket();
    let buf = '';
    let waiter: ((line: string) => void) | undefined;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i < 0) break;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line[3] === '-') continue;
        const w = waiter;
        waiter = undefined;
        w?.(line);
      }
    });
    const reply = () => new Promise<string>((r) => (waiter = r));
    const cmd = async (text: string) => {
      const t0 = performance.now();
      const p = reply();
      sock.write(text);
      const line = await p;
      if (!/^[23]/.test(line)) throw new Error(`${text.trim()}: ${line}`);
      return performance.now() - t0;
    };
    const greeting = reply();
    sock.connect(srv.port, '127.0.0.1');
    await greeting;
    await cmd('EHLO bench.localhost\r\n');
    const t: Record<string, number[]> = { mail: [], rcpt: [], data: [], dot: [], total: [] };
    const accepted: number[] = [];
    const start = performance.now();
    for (let i = 0; i < M; i++) {
      const t0 = performance.now();
      t.mail!.push(await cmd('MAIL FROM:<bench@example.com>\r\n'));
      t.rcpt!.push(await cmd(`RCPT TO:<${srv.rcpt}>\r\n`));
      t.data!.push(await cmd('DATA\r\n'));
      t.dot!.push(await cmd(`${body}.\r\n`));
      accepted.push(performance.now());
      t.total!.push(performance.now() - t0);
    }
    const end = performance.now();
    await cmd('QUIT\r\n').catch(() => 0);
    sock.destroy();
    while (delivered.size < M && performance.now() - end < 8000) await sleep(5);
    watcher.close();
    const deliveredAt = [...delivered.values()].sort((a, b) => a - b);
    const lag = accepted.map((a, i) => (deliveredAt[i] ?? NaN) - a);
    const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(2)} p90 ${percentile(xs, 90).toFixed(2)}`;
    if (round >= 0) console.log(`round ${round}: ${(M / ((end - start) / 1000)).toFixed(0)} msg/s accepted; ms per step: ` +
      Object.entries(t).map(([k, v]) => `${k} ${fmt(v)}`).join(' | ') + ` | 250->new/ ${fmt(lag.filter(Number.isFinite))}`);
  }
} finally {
  await srv.stop();
  rmSync(srv.dir, { recursive: true, force: true });
}
