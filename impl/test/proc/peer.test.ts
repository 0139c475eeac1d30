import { describe, expect, it } from 'vitest';
import type { Handlers } from '../../src/proc/protocol.ts';
import { ChannelClosedError, Peer, RemoteError, TimeoutError } from '../../src/proc/peer.ts';
import { memoryLogger, memoryPair, rawSend } from './helpers.ts';
import { testChannel } from './fixtures/test-channel.ts';

type TestCalls = typeof testChannel['calls'];

function pair(overrides: Partial<Record<keyof TestCalls, (msg: never) => unknown>> = {}) {
  const [a, b] = memoryPair();
  const server = memoryLogger();
  const client = memoryLogger();
  const handlers: Handlers<TestCalls> = {
        'test.echo': ({ text }) => ({ text, pid: 1 }),
        'test.sleep': ({ ms }) => new Promise((resolve) => setTimeout(() => resolve({}), ms)),
        'test.violations': () => ({ count: served.violations }),
        'test.exit': () => {
          throw new Error('not here');
        },
        'test.whoami': () => ({ uid: 0, title: 'x' }),
  };
  const served: Peer<TestCalls> = new Peer<TestCalls>({
    self: 'child', peer: 'parent', transport: b, log: server.log,
    serves: { channel: testChannel, handlers: { ...handlers, ...overrides } as Handlers<TestCalls> },
  });
  const caller = new Peer<Record<never, never>, TestCalls>({ self: 'parent', peer: 'child', transport: a, log: client.log, calls: testChannel });
  return { caller, served, a, b, serverLines: server.lines, clientLines: client.lines };
}

describe('Peer: requests and answers', () => {
  it('pairs answers with requests by id, whatever order they come back in', async () => {
    const { caller } = pair();
    const slow = caller.request({ type: 'test.sleep', ms: 30 }).then(() => 'slow');
    const fast = caller.request({ type: 'test.echo', text: 'hi' }).then((r) => r.text);
    expect(await Promise.race([slow, fast])).toBe('hi');
    expect(await slow).toBe('slow');
  });

  it('rejects with TimeoutError when the answer does not come in time, and drops the late answer', async () => {
    const { caller, clientLines } = pair();
    await expect(caller.request({ type: 'test.sleep', ms: 100 }, { timeoutMs: 20 })).rejects.toThrow(TimeoutError);
    await expect(caller.request({ type: 'test.sleep', ms: 100 }, { timeoutMs: 20 })).rejects.toThrow('child did not answer test.sleep within 20 ms');
    await new Promise((r) => setTimeout(r, 150));
    expect(clientLines.some((l) => l.includes('late or unknown answer'))).toBe(true);
  });

  it('turns an exception in the handler into a RemoteError with its message', async () => {
    const { caller } = pair();
    await expect(caller.request({ type: 'test.exit', status: 1 })).rejects.toThrow(RemoteError);
  });

  it('rejects pending and later requests when the channel closes', async () => {
    const { caller, a } = pair();
    const pending = caller.request({ type: 'test.sleep', ms: 1000 });
    a.close();
    await expect(pending).rejects.toThrow(ChannelClosedError);
    await expect(caller.request({ type: 'test.echo', text: 'x' })).rejects.toThrow(ChannelClosedError);
  });

  it('traces each message with -T imsg', async () => {
    const { caller, clientLines } = pair();
    await caller.request({ type: 'test.echo', text: 'x' });
    expect(clientLines).toContain('imsg: parent -> child: test.echo');
    expect(clientLines).toContain('imsg: parent <- child: test.echo (answer)');
  });
});

describe('Peer: the boundary refuses malformed messages', () => {
  const cases: [string, object][] = [
    ['a body of the wrong shape', { kind: 'request', id: 5, msg: { type: 'test.echo', text: 42 } }],
    ['a type the channel does not have', { kind: 'request', id: 6, msg: { type: 'queue.message.commit' } }],
    ['a frame without a valid id', { kind: 'request', id: -1, msg: { type: 'test.echo', text: 'x' } }],
    ['a frame of no known kind', { kind: 'gossip', id: 7 }],
  ];
  for (const [what, frame] of cases) {
    it(`refuses ${what}, never calling a handler`, async () => {
      let called = false;
      const { served, a, serverLines } = pair({ 'test.echo': () => ((called = true), { text: '', pid: 0 }) });
      rawSend(a, frame);
      await new Promise((r) => setTimeout(r, 20));
      expect(called).toBe(false);
      expect(served.violations).toBe(1);
      expect(serverLines.some((l) => l.startsWith('warn: child: refused a malformed message from parent'))).toBe(true);
    });
  }

  it('answers a malformed request that has an id with an error, so the sender does not wait for nothing', async () => {
    const { a } = pair();
    const answers: unknown[] = [];
    const [x] = [a];
    x.attach({ frame: (f) => answers.push(f), chunk: () => {}, closed: () => {} });
    rawSend(a, { kind: 'request', id: 9, msg: { type: 'test.echo' } });
    await new Promise((r) => setTimeout(r, 20));
    expect(answers).toEqual([{ kind: 'response', id: 9, ok: false, error: 'malformed message: test.echo.text: expected a string' }]);
  });

  it('refuses an answer of the wrong shape', async () => {
    const { caller } = pair({ 'test.echo': () => ({ text: 1 }) });
    await expect(caller.request({ type: 'test.echo', text: 'x' })).rejects.toThrow('test.echo answer.text: expected a string');
    expect(caller.violations).toBe(1);
  });
});
