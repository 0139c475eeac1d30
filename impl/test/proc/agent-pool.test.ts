/**
 * The dispatcher's agents: one per user, closed after a time with
 * nothing to do, and never while a delivery runs (an agent closed under
 * a slow mda cut it off, and the retry delivered the message again).
 */
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { AgentPool } from '../../src/proc/roles/dispatcher.ts';
import type { RoleContext } from '../../src/proc/role.ts';
import { memoryLogger } from './helpers.ts';

const alice = { name: 'alice', uid: 1001, gid: 1001, home: '/home/alice' };

/** A pool whose parent hands over one end of a fresh socket pair for each agent it is asked to start. */
async function pool(idleMs: number) {
  const agentEnds: Socket[] = [];
  const handed = new Map<string, Socket>();
  const ctx = {
    log: memoryLogger().log,
    parent: {
      request: async (msg: { token: string }) => {
        const [mine, theirs] = await socketPair();
        agentEnds.push(theirs);
        theirs.resume();
        handed.set(msg.token, mine);
        return {};
      },
    },
    takeAgentSocket: (token: string) => handed.get(token),
  } as unknown as Pick<RoleContext, 'parent' | 'takeAgentSocket' | 'log'>;
  return { agents: new AgentPool(ctx, idleMs), agentEnds };
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
});
