/**
 * The order of the system calls a commit makes, watched through the
 * SpoolIo table: nothing is renamed into queue/ before its files are
 * durable, and no commit resolves before the directory fsyncs that follow
 * its rename. Also: what a failed fsync does to the commits it concerns.
 */
import { readdirSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openFsBackend } from '../../src/queue/fs-backend.ts';
import { formatEnvelopeId, formatMessageId } from '../../src/queue/ids.ts';
import type { SpoolIo } from '../../src/queue/spool-io.ts';
import type { Envelope } from '../../src/queue/types.ts';
import { logSink, template, tempSpool } from './helpers.ts';

/** An io that performs the real calls and records when each starts and ends, relative to the spool. */
function recordingIo(spool: string, options: { dirSyncDelayMs?: number; failDirSync?: (path: string) => boolean } = {}) {
  const events: string[] = [];
  const rel = (p: string) => relative(spool, p);
  const io: SpoolIo = {
    async syncFile(file, path) {
      events.push(`start fsync ${rel(path)}`);
      await file.sync();
      events.push(`end fsync ${rel(path)}`);
    },
    async syncDir(dir, path) {
      events.push(`start dirsync ${rel(path)}`);
      await new Promise((resolve) => setTimeout(resolve, options.dirSyncDelayMs ?? 0));
      if (options.failDirSync?.(rel(path))) {
        events.push(`fail dirsync ${rel(path)}`);
        throw Object.assign(new Error(`EIO: i/o error, fsync '${path}'`), { code: 'EIO' });
      }
      await dir.sync();
      events.push(`end dirsync ${rel(path)}`);
    },
    async rename(from, to) {
      events.push(`start rename ${rel(from)} ${rel(to)}`);
      await rename(from, to);
      events.push(`end rename ${rel(from)} ${rel(to)}`);
    },
  };
  return { events, io };
}

/** Where an event is in the record; fails the test if it is missing. */
function at(events: string[], event: string, from = 0): number {
  const i = events.indexOf(event, from);
  expect(i, `missing: ${event}`).toBeGreaterThanOrEqual(0);
  return i;
}

describe('a commit, system call by system call', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  async function setup(options?: Parameters<typeof recordingIo>[1]) {
    const tmp = tempSpool();
    const { events, io } = recordingIo(tmp.spool, options);
    const backend = await openFsBackend({ spool: tmp.spool, io, log: logSink().log });
    cleanup = () => {
      void backend.close();
      tmp.cleanup();
    };
    events.length = 0; // forget start-up
    return { backend, events, spool: tmp.spool };
  }

  /** Commits and records the moment the commit resolved. */
  async function commit(backend: Awaited<ReturnType<typeof setup>>['backend'], events: string[], recipients: string[]) {
    const message = await backend.createMessage();
    await message.write(Buffer.from(`content of ${formatMessageId(message.id)}\r\n`));
    const envelopes = await message.commit(recipients.map((r) => template(r)));
    events.push(`resolved ${formatMessageId(message.id)}`);
    return envelopes;
  }

  /** Checks one message's commit against the durability argument. */
  function checkOrder(events: string[], envelopes: Envelope[]) {
    const msgid = formatMessageId(envelopes[0]!.messageId);
    const bucket = `queue/${msgid.slice(0, 2)}`;
    const renameStart = at(events, `start rename incoming/${msgid} ${bucket}/${msgid}`);
    const renameEnd = at(events, `end rename incoming/${msgid} ${bucket}/${msgid}`);
    const resolved = at(events, `resolved ${msgid}`);

    // Before the commit record: content and envelope bytes, and the envelopes' names.
    expect(at(events, `end fsync incoming/${msgid}`)).toBeLessThan(renameStart);
    const envelopesSynced = envelopes.map((e) => at(events, `end fsync ${bucket}/${formatEnvelopeId(e.id)}`));
    const namesSynced = at(events, `start dirsync ${bucket}`, Math.max(...envelopesSynced));
    expect(at(events, `end dirsync ${bucket}`, namesSynced)).toBeLessThan(renameStart);

    // After it, and before "250": fsyncs of both directories the rename changed, started after it.
    expect(at(events, `end dirsync ${bucket}`, at(events, `start dirsync ${bucket}`, renameEnd))).toBeLessThan(resolved);
    expect(at(events, 'end dirsync incoming', at(events, 'start dirsync incoming', renameEnd))).toBeLessThan(resolved);
  }

  it('makes content and envelopes durable, then renames, then fsyncs the directories, then resolves', async () => {
    const { backend, events } = await setup();
    const envelopes = await commit(backend, events, ['bob', 'carol']);
    checkOrder(events, envelopes);
  });

  it('groups concurrent commits: one fsync of incoming/ per batch, and still nobody resolves early', async () => {
    const { backend, events } = await setup({ dirSyncDelayMs: 5 });
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) => commit(backend, events, i % 3 ? ['a'] : ['a', 'b'])));
    for (const envelopes of all) checkOrder(events, envelopes);
    const incomingSyncs = events.filter((e) => e === 'end dirsync incoming').length;
    expect(incomingSyncs).toBeLessThan(20);
    expect(backend.stats.items).toBe(60);
    expect(backend.stats.largest).toBeGreaterThan(1);
  });

  it('refuses the commits of a batch whose directory fsync failed, and removes their files', async () => {
    let fail = true;
    const { backend, events, spool } = await setup({ failDirSync: (p) => p === 'incoming' && fail });
    await expect(commit(backend, events, ['bob'])).rejects.toThrow(/EIO/);
    fail = false;
    const [ok] = await commit(backend, events, ['carol']);
    const names = readdirSync(`${spool}/queue/${formatMessageId(ok!.messageId).slice(0, 2)}`);
    expect(names.sort()).toEqual([formatMessageId(ok!.messageId), formatEnvelopeId(ok!.id)].sort());
    expect(readdirSync(`${spool}/incoming`)).toEqual([]);
    const all = readdirSync(`${spool}/queue`).flatMap((b) => readdirSync(`${spool}/queue/${b}`));
    expect(all).toHaveLength(2);
  });

  it('refuses a commit whose files could not be made durable, and removes them', async () => {
    const { backend, events, spool } = await setup({ failDirSync: (p) => p.startsWith('queue/') });
    await expect(commit(backend, events, ['bob', 'carol'])).rejects.toThrow(/EIO/);
    expect(events.some((e) => e.startsWith('start rename'))).toBe(false);
    expect(readdirSync(`${spool}/incoming`)).toEqual([]);
    const all = readdirSync(`${spool}/queue`).flatMap((b) => readdirSync(`${spool}/queue/${b}`));
    expect(all).toEqual([]);
  });

  it('makes an envelope update durable: temporary file fsync, rename over, bucket fsync', async () => {
    const { backend, events } = await setup();
    const [e] = await commit(backend, events, ['bob']);
    events.length = 0;
    await backend.updateEnvelope({ ...e!, attempts: 1 });
    const evpid = formatEnvelopeId(e!.id);
    const bucket = `queue/${evpid.slice(0, 2)}`;
    const temp = events.find((x) => x.startsWith('end fsync temporary/'))!.slice('end fsync '.length);
    expect(temp).toMatch(new RegExp(`^temporary/${evpid}\\.\\d+$`));
    expect(events).toEqual([
      `start fsync ${temp}`, `end fsync ${temp}`,
      `start rename ${temp} ${bucket}/${evpid}`, `end rename ${temp} ${bucket}/${evpid}`,
      `start dirsync ${bucket}`, `end dirsync ${bucket}`,
    ]);
  });
});
