import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/queue/group-commit.ts';

/** A flush the test finishes by hand, recording each batch. */
function manualFlush() {
  const batches: number[][] = [];
  const finish: Array<(outcomes?: (Error | undefined)[]) => void> = [];
  const flush = (items: readonly number[]) => {
    batches.push([...items]);
    return new Promise<(Error | undefined)[]>((resolve) => {
      finish.push((outcomes) => resolve(outcomes ?? items.map(() => undefined)));
    });
  };
  return { batches, finish, flush };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('group commit', () => {
  it('flushes a lone item at the end of the turn, without waiting for company', async () => {
    const { batches, finish, flush } = manualFlush();
    const group = new GroupCommit(flush);
    const done = group.submit(1);
    expect(batches).toEqual([]);
    await tick();
    expect(batches).toEqual([[1]]);
    finish[0]!();
    await done;
  });

  it('gathers what arrives during a flush into the next batch, and resolves nobody early', async () => {
    const { batches, finish, flush } = manualFlush();
    const group = new GroupCommit(flush);
    const resolved: number[] = [];
    const submit = (n: number) => group.submit(n).then(() => resolved.push(n));

    const all = [submit(1)];
    await tick();
    for (const n of [2, 3, 4]) all.push(submit(n));
    await tick();
    expect(batches).toEqual([[1]]); // 2, 3, 4 wait for the flush in progress
    expect(resolved).toEqual([]);

    finish[0]!();
    await tick();
    expect(resolved).toEqual([1]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    all.push(submit(5));
    await tick();
    expect(resolved).toEqual([1]); // the second batch is still being flushed

    finish[1]!();
    await tick();
    expect(resolved).toEqual([1, 2, 3, 4]);
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
    finish[2]!();
    await Promise.all(all);
    expect(resolved).toEqual([1, 2, 3, 4, 5]);
    expect(group.stats).toEqual({ batches: 3, items: 5, largest: 3 });
  });

  it('puts everything submitted in one turn of the event loop into one batch', async () => {
    const { batches, finish, flush } = manualFlush();
    const group = new GroupCommit(flush);
    const all = [1, 2, 3].map((n) => group.submit(n));
    await tick();
    expect(batches).toEqual([[1, 2, 3]]);
    finish[0]!();
    await Promise.all(all);
    expect(group.stats).toEqual({ batches: 1, items: 3, largest: 3 });
  });

  it('fails only the items whose outcome is an error', async () => {
    const { finish, flush } = manualFlush();
    const group = new GroupCommit(flush);
    const first = group.submit(1);
    await tick();
    const [a, b] = [group.submit(2), group.submit(3)];
    finish[0]!();
    await first;
    await tick();
    finish[1]!([new Error('EIO on 2'), undefined]);
    await expect(a).rejects.toThrow('EIO on 2');
    await expect(b).resolves.toBeUndefined();
  });

  it('fails the whole batch if the flush throws, and keeps going for the next', async () => {
    let calls = 0;
    const group = new GroupCommit<number>(async (items) => {
      calls += 1;
      if (calls === 1) throw new Error('disk gone');
      return items.map(() => undefined);
    });
    await expect(group.submit(1)).rejects.toThrow('disk gone');
    await expect(group.submit(2)).resolves.toBeUndefined();
  });
});
