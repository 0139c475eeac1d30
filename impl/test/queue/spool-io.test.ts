/**
 * DirectoryHandles: directories fsync'd through descriptors it keeps open,
 * but never more than it was told, so that a daemon allowed few
 * descriptors does not spend them all on its spool's buckets.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryHandles, durableIo } from '../../src/queue/spool-io.ts';
import { spoolPerTest } from './helpers.ts';

const openDescriptors = () => readdirSync('/proc/self/fd').length;

describe('DirectoryHandles', () => {
  const spoolDir = spoolPerTest();

  function directories(n: number): string[] {
    const root = spoolDir();
    return Array.from({ length: n }, (_, i) => {
      const dir = join(root, `d${i}`);
      mkdirSync(dir, { recursive: true });
      return dir;
    });
  }

  it('keeps at most maxOpen directories open, the ones used last', async () => {
    const dirs = directories(20);
    const handles = new DirectoryHandles(durableIo, 3);
    const before = openDescriptors();
    for (const dir of dirs) await handles.sync(dir);
    expect(handles.open).toBe(3);
    expect(openDescriptors() - before).toBeLessThanOrEqual(3);
    await handles.close();
    expect(openDescriptors()).toBe(before);
  });

  it('never closes a directory while an fsync of it runs: many at once all complete', async () => {
    const dirs = directories(10);
    const handles = new DirectoryHandles(durableIo, 2);
    await Promise.all(dirs.flatMap((dir) => [handles.sync(dir), handles.sync(dir)]));
    await handles.sync(dirs[0]!); // the next one trims back to the limit
    expect(handles.open).toBeLessThanOrEqual(2);
    await handles.close();
  });
});
