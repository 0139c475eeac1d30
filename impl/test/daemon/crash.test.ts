import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { clientScript, committedContent, freePort, processGroup, startServing, workDir } from './helpers.ts';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** Runs the looping client; resolves with the tokens it got a 250 for, once it stops. */
function loopClient(port: number, prefix: string): { acked: string[]; done: Promise<void> } {
  const acked: string[] = [];
  const client = spawn('python3', [clientScript, 'loop', String(port), prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => client.kill('SIGKILL'));
  let partial = '';
  client.stdout.setEncoding('utf8').on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('ACK ')) acked.push(line.slice(4));
  });
  return { acked, done: new Promise((resolve) => client.once('exit', () => resolve())) };
}

describe.each(['fs', 'log'] as const)('a crash loses no message that got 250 (queue backend %s)', { timeout: 120_000 }, (backend) => {
  it('SIGKILL to the whole process group while clients send, then a restart: every acknowledged message is queued', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const queue = ['-B', `queue=${backend}`];
    const daemon = await startServing(conf, spool, queue);
    cleanup.push(() => {
      try {
        process.kill(-daemon.pid, 'SIGKILL');
      } catch {
        // gone
      }
    });

    // Three clients at once, so that commits are in flight when the kill lands.
    const clients = ['a', 'b', 'c'].map((p) => loopClient(port, `crash-${p}`));
    while (clients.reduce((n, c) => n + c.acked.length, 0) < 10) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 1500));
    process.kill(-daemon.pid, 'SIGKILL');
    await Promise.all(clients.map((c) => c.done));
    await daemon.exited;
    await new Promise((r) => setTimeout(r, 200));
    expect(processGroup(daemon.pid)).toEqual([]);
    const acked = clients.flatMap((c) => c.acked);

    // The restarted queue purges what was never committed and recovers the rest.
    const again = await startServing(conf, spool, queue);
    cleanup.push(() => {
      try {
        process.kill(-again.pid, 'SIGKILL');
      } catch {
        // gone
      }
    });
    const recovered = Number(/(\d+) envelope/.exec(await again.waitFor(/^info: queue: \d+ envelope\(s\) in the spool at start-up$/))?.[1]);
    process.kill(again.pid, 'SIGTERM');
    expect(await again.exited).toBe(0);

    const content = committedContent(spool, backend === 'fs' ? 'queue' : 'log');
    const lost = acked.filter((token) => !content.includes(`token ${token}\r\n`));
    console.log(`crash test (${backend}): ${acked.length} messages acknowledged before the kill, ${recovered} envelopes recovered, ${lost.length} lost`);
    expect(lost).toEqual([]);
    expect(recovered).toBeGreaterThanOrEqual(acked.length);
  });
});
