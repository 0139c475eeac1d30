/**
 * Operations on one envelope take turns in the queue process: a delay
 * warning still being written and a delivery of the same envelope never
 * overlap; operations on other envelopes do.
 */
import { describe, expect, it } from 'vitest';
import { EnvelopeTurns } from '../../src/proc/envelope-turns.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** An operation that records when it starts and ends, and ends when told. */
function operation(log: string[], name: string) {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  return {
    finish,
    work: async () => {
      log.push(`${name} starts`);
      await finished;
      log.push(`${name} ends`);
      return name;
    },
  };
}

describe('envelope turns', () => {
  it('run operations on the same envelope one after the other, in the order they came', async () => {
    const turns = new EnvelopeTurns();
    const log: string[] = [];
    const warn = operation(log, 'warn');
    const deliver = operation(log, 'deliver');
    const warned = turns.run(['a', 'b'], warn.work);
    const delivered = turns.run(['b'], deliver.work);
    await tick();
    expect(log).toEqual(['warn starts']);
    warn.finish();
    deliver.finish();
    expect(await Promise.all([warned, delivered])).toEqual(['warn', 'deliver']);
    expect(log).toEqual(['warn starts', 'warn ends', 'deliver starts', 'deliver ends']);
    expect(turns.size).toBe(0);
  });

  it('let operations on other envelopes run at the same time', async () => {
    const turns = new EnvelopeTurns();
    const log: string[] = [];
    const one = operation(log, 'one');
    const two = operation(log, 'two');
    const first = turns.run(['a'], one.work);
    const second = turns.run(['b'], two.work);
    await tick();
    expect(log).toEqual(['one starts', 'two starts']);
    two.finish();
    one.finish();
    await Promise.all([first, second]);
  });

  it('never deadlock two operations that share envelopes in another order, and go on after a failure', async () => {
    const turns = new EnvelopeTurns();
    const log: string[] = [];
    const failing = turns.run(['a', 'b'], async () => {
      await tick();
      throw new Error('the disk is full');
    });
    const next = turns.run(['b', 'a'], async () => 'next');
    await expect(failing).rejects.toThrow('the disk is full');
    expect(await next).toBe('next');
    expect(log).toEqual([]);
    expect(turns.size).toBe(0);
  });
});
