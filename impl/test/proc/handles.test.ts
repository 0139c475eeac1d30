/**
 * The parent's boundary and the descriptors Node's IPC channel can carry.
 * Any child, and a delivery agent is one its user can take over with
 * ptrace, may attach a socket to any message it sends; Node opens it in
 * the parent before a line of ours runs. A socket that no request of the
 * channel takes must be closed there and then, or each message costs the
 * root parent one descriptor for good, and enough of them stop it from
 * forking agents, opening ~/.forward files and taking mailbox locks.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { mailboxService } from '../../src/parent/mailbox.ts';
import { agentParentChannel } from '../../src/proc/channels/delivery.ts';
import { Peer } from '../../src/proc/peer.ts';
import { childExecArgv } from '../../src/proc/spawn.ts';
import { ipcTransport } from '../../src/proc/transport.ts';
import { memoryLogger } from './helpers.ts';

const entry = fileURLToPath(new URL('./fixtures/handle-sender.ts', import.meta.url));
const started: { kill: () => void }[] = [];
afterEach(() => {
  for (const c of started.splice(0)) c.kill();
});

/** Forks the hostile agent, serves it what the parent serves an agent, and collects what it prints. */
function hostileAgent(bodies: object[]) {
  const { log, lines } = memoryLogger();
  const proc = fork(entry, [JSON.stringify(bodies)], { execArgv: childExecArgv(), stdio: ['ignore', 'pipe', 'inherit', 'ipc'], serialization: 'json' });
  started.push({ kill: () => proc.kill('SIGKILL') });
  const mailbox = mailboxService({ name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }, () => true, { dir: '/nonexistent-mail-dir' });
  const peer = new Peer({ self: 'parent', peer: 'agent nobody', transport: ipcTransport(proc), log, serves: { channel: agentParentChannel, handlers: mailbox.handlers } });
  const out: string[] = [];
  let partial = '';
  const waiters: { line: string; resolve: () => void }[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      out.push(line);
      for (const w of waiters.filter((w) => w.line === line)) w.resolve();
    }
  });
  const printed = (line: string, ms = 5_000) => new Promise<boolean>((resolve) => {
    if (out.includes(line)) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    waiters.push({ line, resolve: () => (clearTimeout(timer), resolve(true)) });
  });
  return { proc, peer, lines, printed };
}

describe('a socket a child attaches to a message the parent does not take one with', { timeout: 30_000 }, () => {
  it('is closed, whether the request is served, malformed or of no known type', async () => {
    const { printed, peer } = hostileAgent([
      { type: 'parent.mbox.unlock', lock: 1 },
      { type: 'parent.mbox.unlock', lock: 'not a number' },
      { type: 'parent.agent.open', token: '0011223344556677', user: { name: 'root', uid: 0, gid: 0, home: '/root' } },
    ]);
    expect(await printed('sent')).toBe(true);
    const closed = await Promise.all([0, 1, 2].map((n) => printed(`closed ${n}`)));
    expect(closed).toEqual([true, true, true]);
    expect(peer.violations).toBe(2);
  });
});
