/**
 * The parent's answers to its children, called directly: what each may
 * ask, and whose word it takes for an account.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parser.ts';
import { createLogger } from '../../src/log/index.ts';
import { parentServices } from '../../src/parent/services.ts';
import type { UserRecord } from '../../src/delivery/index.ts';

function services() {
  const { config, errors } = parseConfig('action "local" maildir\nmatch for local action "local"\n', { file: 'smtpd.conf' });
  expect(errors).toEqual([]);
  const lines: string[] = [];
  const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => lines.push(l) });
  const forChild = parentServices({
    config, log, verbose: 0, trace: new Set(), foreground: true,
    supervisor: () => { throw new Error('no supervisor in this test'); },
  });
  return { forChild, lines };
}

describe('parent.forward.open', () => {
  it("reads the ~/.forward of an account the system has, as it has it", async () => {
    const { forChild } = services();
    const answer = await forChild('lookup')['parent.forward.open']({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' } }, undefined);
    expect(answer).toEqual({ status: 'missing' });
  });

  it('refuses an account no userbase has: a known name with another home, or a uid of its own choosing', async () => {
    const { forChild, lines } = services();
    const open = forChild('lookup')['parent.forward.open'];
    await expect(open({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/root' } }, undefined))
      .rejects.toThrow('no userbase of smtpd.conf has the account nobody (uid 65534, home /root)');
    await expect(open({ type: 'parent.forward.open', user: { name: 'nobody', uid: 0, gid: 0, home: '/nonexistent' } }, undefined))
      .rejects.toThrow(/no userbase/);
    expect(lines[0]).toMatch(/^warn: smtpd: refusing to read ~\/\.forward of nobody \(uid 65534, home \/root\)/);
  });

  it('answers lookup only', async () => {
    const { forChild } = services();
    await expect(forChild('smtp')['parent.forward.open']({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' } }, undefined))
      .rejects.toThrow('smtp may not ask the parent to open a ~/.forward');
  });
});

/**
 * The parent's `parent.agent.open` as the dispatcher calls it, starting
 * real agents. `agents.handed[i]()` lets the i-th agent's socket go, as
 * the dispatcher does with an idle agent; `agents.stop()` ends them all.
 */
function agentParent(options: { maxAgents?: number } = {}) {
  const handed: (() => void)[] = [];
  const { config } = parseConfig('action "local" maildir\nmatch for local action "local"\n', { file: 'smtpd.conf' });
  const lines: string[] = [];
  const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => lines.push(l) });
  // The dispatcher's side, as far as the parent sees it: it takes its end of each agent's socket. Over
  // IPC it gets a copy and the parent closes its own; here both are one object, so the parent's close
  // is made a no-op, and the test closes the socket when it plays the dispatcher letting an agent go.
  const keep = (socket: Socket) => {
    const close = socket.destroy.bind(socket);
    socket.destroy = () => socket;
    handed.push(() => close());
  };
  const dispatcher = { control: { request: async (_msg: unknown, { handle }: { handle: Socket }) => (keep(handle), {}) } };
  const open = parentServices({
    config, log, verbose: 0, trace: new Set(), foreground: true, ...options,
    supervisor: () => ({ get: () => dispatcher }) as never,
  })('dispatcher')['parent.agent.open'];
  const pids: number[] = [];
  return {
    lines,
    handed,
    pids,
    ask: (user: UserRecord) => open({ type: 'parent.agent.open', token: randomBytes(8).toString('hex'), user }, undefined),
    /** Lets agent `i` go and waits until it has exited. */
    async letGo(i: number): Promise<void> {
      handed[i]!();
      const deadline = Date.now() + 10_000;
      while (existsSync(`/proc/${pids[i]}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 100));
    },
    stop(): void {
      for (const close of handed) close();
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited already, as it should once its socket closed
        }
      }
    },
  };
}

const nobody = { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' };

describe('parent.agent.open', { timeout: 60_000 }, () => {
  it('starts at most two agents at once for one uid and gid, however often the dispatcher asks', async () => {
    const agents = agentParent();
    try {
      const first = await agents.ask(nobody);
      const second = await agents.ask(nobody);
      agents.pids.push(Number(first.pid), Number(second.pid));
      await expect(agents.ask(nobody)).rejects.toThrow('no delivery agent for nobody: 2 already run for uid 65534 and gid 65534');
      expect(agents.lines.some((l) => l.startsWith('warn: smtpd: refusing a delivery agent for nobody (uid 65534, gid 65534): 2 already run'))).toBe(true);
      // The first one's dispatcher socket closes, as after its idle minute: it exits, and a new one may start.
      await agents.letGo(0);
      const third = await agents.ask(nobody);
      agents.pids.push(Number(third.pid));
      expect(third.pid).toMatch(/^\d+$/);
    } finally {
      agents.stop();
    }
  });

  it('starts at most maxAgents in all; past it answers full, with a warning, and starts one again once one has exited', async () => {
    const agents = agentParent({ maxAgents: 2 });
    const daemon = { name: 'daemon', uid: 1, gid: 1, home: '/usr/sbin' };
    const bin = { name: 'bin', uid: 2, gid: 2, home: '/bin' };
    try {
      for (const user of [nobody, daemon]) agents.pids.push(Number((await agents.ask(user)).pid));
      expect(await agents.ask(bin)).toEqual({ full: 'no delivery agent for bin for now: 2 already run, the most there may be' });
      expect(agents.lines.filter((l) => l.startsWith('warn:')).map((l) => l.trimEnd())).toEqual([
        'warn: smtpd: refusing a delivery agent for bin (uid 2, gid 2): 2 delivery agents already run, the most there may be',
      ]);
      // nobody's agent is let go, as the dispatcher does with an idle one: it exits, and bin's may start.
      await agents.letGo(0);
      const third = await agents.ask(bin);
      agents.pids.push(Number(third.pid));
      expect(third.pid).toMatch(/^\d+$/);
    } finally {
      agents.stop();
    }
  });
});
