/**
 * The dispatcher's agents: one per user, closed after a time with
 * nothing to do, and never while a delivery runs (an agent closed under
 * a slow mda cut it off, and the retry delivered the message again).
 * And one that breaks the framing, dropped with a line in the log; and
 * idle ones let go early when the parent runs as many as it may.
 */
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { ChannelClosedError } from '../../src/proc/peer.ts';
import { AgentPool, AgentRefused } from '../../src/proc/roles/dispatcher.ts';
import type { RoleContext } from '../../src/proc/role.ts';
import { memoryLogger } from './helpers.ts';

const alice = { name: 'alice', uid: 1001, gid: 1001, home: '/home/alice' };
const account = (name: string, uid: number) => ({ name, uid, gid: uid, home: `/home/${name}` });

/**
 * A pool whose parent hands over one end of a fresh socket pair for each
 * agent it is asked to start, or answers `full` for the users `full` names.
 */
async function pool(idleMs: number, full = new Set<string>()) {
  const { log, lines } = memoryLogger();
  const agentEnds: Socket[] = [];
  const handed = new Map<string, Socket>();
  const ctx = {
    log,
    parent: {
      request: async (msg: { token: string; user: { name: string } }) => {
        if (full.has(msg.user.name)) return { full: `no delivery agent for ${msg.user.name} for now: 64 already run, the most there may be` };
        const [mine, theirs] = await socketPair();
        agentEnds.push(theirs);
        theirs.resume();
        mine.resume(); // as a socket handed over IPC comes: the pool's Peer reads it at once
        handed.set(msg.token, mine);
        return {};
      },
    },
    takeAgentSocket: (token: string) => handed.get(token),
  } as unknown as Pick<RoleContext, 'parent' | 'takeAgentSocket' | 'log'>;
  return { agents: new AgentPool(ctx, idleMs), agentEnds, lines };
}

describe('the agent pool', () => {
  it('keeps an agent while a delivery runs, however long, and closes it once idle for the idle time', async () => {
    const { agents, agentEnds } = await pool(50);
    const lease = await agents.get(alice);
    await sleep(200); // four idle times, with a delivery under way
    expect(lease.peer.isClosed).toBe(false);
    lease.release();
    await sleep(150);
    expect(lease.peer.isClosed).toBe(true);
    expect(agentEnds).toHaveLength(1);
    agents.close();
  });

  it('lends the same agent to deliveries for the same user, and waits for the last of them', async () => {
    const { agents, agentEnds } = await pool(50);
    const first = await agents.get(alice);
    const second = await agents.get(alice);
    expect(second.peer).toBe(first.peer);
    first.release();
    await sleep(150);
    expect(second.peer.isClosed).toBe(false);
    second.release();
    second.release(); // twice is once
    await sleep(150);
    expect(second.peer.isClosed).toBe(true);
    expect(agentEnds).toHaveLength(1);
    agents.close();
  });

  it.each([
    ['bytes that are no JSON', Buffer.concat([Buffer.from([0, 0, 0, 9, 0]), Buffer.from('not json')]), 'a frame is not JSON'],
    ['a frame of a kind that does not exist', Buffer.from([0, 0, 0, 2, 9, 0x78]), 'unknown frame kind 9'],
    ['a frame longer than any allowed', Buffer.from([0xff, 0xff, 0xff, 0xff, 0]), 'bad framing: frame of 4294967295 bytes'],
  ])('an agent that sends %s is dropped with one warning naming its user, before its delivery fails', async (_what, bytes, reason) => {
    const { agents, agentEnds, lines } = await pool(60_000);
    const lease = await agents.get(alice);
    let loggedBefore: string[] | undefined;
    const answer = lease.peer.request({ type: 'agent.deliver', ref: 1, envelope: {} as never, user: alice }).catch((err: unknown) => {
      loggedBefore = lines.filter((l) => l.startsWith('warn:'));
      throw err;
    });
    agentEnds[0]!.write(bytes);
    await expect(answer).rejects.toThrow(new ChannelClosedError(`agent alice: ${reason}`));
    expect(loggedBefore).toEqual([`warn: dispatcher: dropped the channel to the delivery agent for alice (uid 1001): ${reason}`]);
    await sleep(50);
    expect(lines.filter((l) => l.startsWith('warn:'))).toHaveLength(1);
    expect(lease.peer.isClosed).toBe(true);
    lease.release();
    agents.close();
  });

  it('when the parent runs as many agents as it may, fails for now and lets the agent idle longest go, never a busy one', async () => {
    const [bob, carol, dave] = [account('bob', 1002), account('carol', 1003), account('dave', 1004)];
    const { agents, agentEnds } = await pool(60_000, new Set(['dave']));
    const [a, b, c] = [await agents.get(alice), await agents.get(bob), await agents.get(carol)];
    a.release();
    await sleep(10);
    b.release(); // carol's stays busy
    const refusal = agents.get(dave);
    await expect(refusal).rejects.toThrow('no delivery agent for dave for now: 64 already run, the most there may be');
    await expect(refusal).rejects.not.toBeInstanceOf(AgentRefused); // for now: the envelope is tried again
    await sleep(20);
    expect([a.peer.isClosed, b.peer.isClosed, c.peer.isClosed]).toEqual([true, false, false]);
    await expect(agents.get(dave)).rejects.toThrow(/for now/);
    await sleep(20);
    expect([b.peer.isClosed, c.peer.isClosed]).toEqual([true, false]);
    await expect(agents.get(dave)).rejects.toThrow(/for now/); // none idle: nothing more to let go
    await sleep(20);
    expect(c.peer.isClosed).toBe(false);
    // alice's next delivery gets a new agent.
    const again = await agents.get(alice);
    expect(again.peer).not.toBe(a.peer);
    expect(agentEnds).toHaveLength(4);
    again.release();
    c.release();
    agents.close();
  });
});
