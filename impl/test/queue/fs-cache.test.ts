/**
 * What the fs backend keeps in memory of what it committed (the envelope
 * and content caches), how deletes leave the event loop alone, and how
 * callers share directory fsyncs. Memory never replaces the disk as the
 * truth: a file changed, replaced or removed since it was written is read
 * again, or gone.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFsBackend } from '../../src/queue/fs-backend.ts';
import { formatMessageId } from '../../src/queue/ids.ts';
import { DirectoryHandles, durableIo, type SpoolIo } from '../../src/queue/spool-io.ts';
import type { Envelope } from '../../src/queue/types.ts';
import { commitMessage, contentPath, envelopePath, logSink, readAll, spoolPerTest, tempSpool } from './helpers.ts';


describe('the fs backend remembers what it committed', () => {
  const spoolDir = spoolPerTest();

  it('loads a committed envelope and its content from memory while their files are the ones it wrote', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const [e] = await commitMessage(q, 'hello', ['bob']);
    expect(await q.loadEnvelope(e!.id)).toEqual(e);
    expect((await readAll(await q.openMessage(e!.messageId))).toString()).toBe('hello');
    expect(q.cacheStats).toEqual({ envelopeHits: 1, envelopeMisses: 0, contentHits: 1, contentMisses: 0 });
    // A file changed since (here: touched) is read from disk again.
    const later = new Date(Date.now() + 5000);
    utimesSync(envelopePath(spool, e!), later, later);
    utimesSync(contentPath(spool, e!), later, later);
    expect(await q.loadEnvelope(e!.id)).toEqual(e);
    expect((await readAll(await q.openMessage(e!.messageId))).toString()).toBe('hello');
    expect(q.cacheStats).toEqual({ envelopeHits: 1, envelopeMisses: 1, contentHits: 1, contentMisses: 1 });
    await q.close();
  });

  it('reads a replaced envelope file from disk again, and validates it', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const [e] = await commitMessage(q, 'hello', ['bob']);
    const path = envelopePath(spool, e!);
    writeFileSync(`${path}.new`, readFileSync(path, 'utf8').replace('"bob"', '"rob"'));
    renameSync(`${path}.new`, path);
    expect((await q.loadEnvelope(e!.id))?.recipient.user).toBe('rob');
    await q.close();
  });

  it('says an envelope removed by hand is gone, and a message removed by hand cannot be opened', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const [a, b] = await commitMessage(q, 'hello', ['bob', 'carol']);
    rmSync(envelopePath(spool, a!));
    expect(await q.loadEnvelope(a!.id)).toBeUndefined();
    expect(await q.loadEnvelope(b!.id)).toEqual(b);
    expect((await readAll(await q.openMessage(b!.messageId))).toString()).toBe('hello');
    rmSync(contentPath(spool, b!));
    await expect(q.openMessage(b!.messageId)).rejects.toThrow(/ENOENT/);
    await q.close();
  });

  it('hands out envelopes no caller can change', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const [e] = await commitMessage(q, 'hello', ['bob']);
    const loaded = (await q.loadEnvelope(e!.id))!;
    expect(() => {
      (loaded.recipient as { user: string }).user = 'mallory';
    }).toThrow(TypeError);
    expect((await q.loadEnvelope(e!.id))?.recipient.user).toBe('bob');
    e!.recipient.user = 'changed by the committer'; // the caller's own copy is its own
    expect((await q.loadEnvelope(e!.id))?.recipient.user).toBe('bob');
    await q.close();
  });

  it('remembers an update, and stays right when its caches are tiny or off', async () => {
    for (const cache of [{ envelopes: 1, contentBytes: 8 }, { envelopes: 0, contentBytes: 0 }]) {
      const spool = join(spoolDir(), String(cache.envelopes));
      const q = await openFsBackend({ spool, log: logSink().log, cache });
      const committed = await Promise.all(Array.from({ length: 5 }, (_, i) => commitMessage(q, `message ${i}`, ['x', 'y'])));
      for (const [i, [x, y]] of committed.entries()) {
        expect(await q.loadEnvelope(x!.id)).toEqual(x);
        expect(await q.loadEnvelope(y!.id)).toEqual(y);
        expect((await readAll(await q.openMessage(x!.messageId))).toString()).toBe(`message ${i}`);
      }
      const [x] = committed[0]!;
      await q.updateEnvelope({ ...x!, attempts: 1, lastError: 'later' });
      expect(await q.loadEnvelope(x!.id)).toEqual({ ...x!, attempts: 1, lastError: 'later' });
      await q.close();
    }
  });

  it('reads a large message from disk, a stream of it, not a copy in memory', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const big = Buffer.alloc(200 * 1024, 'y');
    const [e] = await commitMessage(q, big, ['bob']);
    expect((await readAll(await q.openMessage(e!.messageId))).equals(big)).toBe(true);
    await q.close();
  });
});

describe('deletes', () => {
  const spoolDir = spoolPerTest();

  it('are done at once for every caller, the files unlinked in the background, and close() waits for them', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const [a, b] = await commitMessage(q, 'hello', ['bob', 'carol']);
    await q.deleteEnvelope(a!.id);
    expect(await q.loadEnvelope(a!.id)).toBeUndefined();
    await expect(q.updateEnvelope({ ...a!, attempts: 1 })).rejects.toThrow(/no envelope/);
    await q.deleteEnvelope(a!.id); // twice is harmless, and counts once
    expect((await readAll(await q.openMessage(b!.messageId))).toString()).toBe('hello');
    await q.deleteEnvelope(b!.id);
    await expect(q.openMessage(b!.messageId)).rejects.toThrow(/no message/);
    await q.close();
    for (const path of [envelopePath(spool, a!), envelopePath(spool, b!), contentPath(spool, b!)]) {
      expect(existsSync(path)).toBe(false);
    }
  });

  it('never draw the id of a message whose content is still being unlinked', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    const ids = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const [e] = await commitMessage(q, `m${i}`, ['bob']);
      await q.deleteEnvelope(e!.id);
      ids.add(e!.messageId);
      const message = await q.createMessage();
      expect(ids.has(message.id) && existsSync(join(spool, 'queue', formatMessageId(message.id).slice(0, 2), formatMessageId(message.id)))).toBe(false);
      await message.abort();
    }
    await q.close();
    const left = readdirSync(join(spool, 'queue')).flatMap((bucket) => readdirSync(join(spool, 'queue', bucket)));
    expect(left).toEqual([]);
  });

  // Found by a soak (bench/src/soak.ts): the queue's heap grew by about
  // 45 bytes per message, for good, and a Set stops at 2^24 entries.
  it('forget a delivered message entirely: nothing is kept per message once its last envelope is gone', async () => {
    const spool = spoolDir();
    const q = await openFsBackend({ spool, log: logSink().log });
    for (let i = 0; i < 50; i++) {
      const envelopes = await commitMessage(q, `m${i}`, ['bob', 'carol']);
      for (const e of envelopes) await q.deleteEnvelope(e.id);
    }
    await q.close();
    expect(q.messagesTracked).toBe(0);
  });
});

describe('directory fsyncs', () => {
  /** An io whose directory fsyncs are recorded and take `ms` each. */
  function slowDirIo(ms: number) {
    const events: string[] = [];
    const io: SpoolIo = {
      ...durableIo,
      async syncDir(dir, path) {
        events.push(`start ${path}`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        await dir.sync();
        events.push(`end ${path}`);
      },
    };
    return { events, io };
  }

  it('are shared: callers who arrive during one wait together for the next, which starts after they came', async () => {
    const tmp = tempSpool();
    try {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(tmp.spool, { recursive: true });
      const { events, io } = slowDirIo(20);
      const dirs = new DirectoryHandles(io);
      const first = dirs.sync(tmp.spool);
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push('change made');
      const later = Array.from({ length: 10 }, () => dirs.sync(tmp.spool).then(() => events.push('later resolved')));
      await first;
      await Promise.all(later);
      // One fsync for the ten who came during the first, and it started after their change.
      expect(events.filter((e) => e.startsWith('start'))).toHaveLength(2);
      const secondStart = events.lastIndexOf(`start ${tmp.spool}`);
      expect(secondStart).toBeGreaterThan(events.indexOf('change made'));
      expect(secondStart).toBeGreaterThan(events.indexOf(`end ${tmp.spool}`));
      expect(events.indexOf('later resolved')).toBeGreaterThan(events.lastIndexOf(`end ${tmp.spool}`));
      expect(events.filter((e) => e === 'later resolved')).toHaveLength(10);
      await dirs.close();
    } finally {
      tmp.cleanup();
    }
  });

  it('fail for everyone who waited for the fsync that failed, and the next caller tries again', async () => {
    const tmp = tempSpool();
    try {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(tmp.spool, { recursive: true });
      let fail = true;
      const io: SpoolIo = {
        ...durableIo,
        async syncDir(dir) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (fail) throw new Error('EIO');
          await dir.sync();
        },
      };
      const dirs = new DirectoryHandles(io);
      const both = [dirs.sync(tmp.spool), dirs.sync(tmp.spool)];
      for (const p of both) await expect(p).rejects.toThrow('EIO');
      fail = false;
      await expect(dirs.sync(tmp.spool)).resolves.toBeUndefined();
      await dirs.close();
    } finally {
      tmp.cleanup();
    }
  });
});
