/**
 * The log backend's own behaviour, beyond the contract every backend
 * passes (backends.test.ts): its records, what start-up does with a torn
 * tail or a damaged segment, segments rotated and removed oldest first,
 * compaction, large messages, and deletes nobody waited for.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatEnvelopeId, formatMessageId } from '../../src/queue/ids.ts';
import { DEFAULT_PREALLOCATE_BYTES, type LogBackendOptions, type LogQueueBackend, openLogBackend } from '../../src/queue/log-backend.ts';
import {
  COMMIT, decodeCommitHead, decodeDelete, decodeHeader, decodeUpdate, DELETE, encodeCommitHead, encodeDelete, encodeUpdate,
  HEADER_BYTES, record, recordCrc, UPDATE,
} from '../../src/queue/log-format.ts';
import { SPILL_BYTES } from '../../src/queue/log-incoming.ts';
import { durableIo, type SpoolIo } from '../../src/queue/spool-io.ts';
import type { EnvelopeId, MessageId } from '../../src/queue/types.ts';
import { commitMessage, logSink, readAll, recoverAll, spoolPerTest, template } from './helpers.ts';

const segmentPath = (spool: string, seq: number) => join(spool, 'log', seq.toString(16).padStart(8, '0'));
const segmentFiles = (spool: string) => readdirSync(join(spool, 'log')).filter((n) => n !== 'incoming').sort();
const byId = (a: { id: bigint }, b: { id: bigint }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const contentOf = async (q: LogQueueBackend, msgid: MessageId) => (await readAll(await q.openMessage(msgid))).toString();

describe('log records', () => {
  it('round-trip, and their checksum covers the type and every byte of the payload', () => {
    const msgid = 0x1a2b3c4d as MessageId;
    const a = 0x1a2b3c4d00000001n as EnvelopeId;
    const b = 0x1a2b3c4dffffffffn as EnvelopeId;
    const envelopes = [{ id: a, text: '{"a":"é"}\n' }, { id: b, text: '' }];
    const head = encodeCommitHead(msgid, envelopes);
    expect(decodeCommitHead(head)).toEqual({ msgid, envelopes });
    expect(decodeCommitHead(head.subarray(0, head.length - 1))).toBeUndefined();
    expect(decodeUpdate(encodeUpdate(a, 'new text\n'))).toEqual({ id: a, text: 'new text\n' });
    expect(decodeDelete(encodeDelete(b))).toBe(b);
    expect(decodeDelete(Buffer.alloc(8))).toBeUndefined(); // 0 is no envelope id

    const [header, ...payload] = record(COMMIT, [head, Buffer.from('content')]);
    const { length, crc, type } = decodeHeader(header!);
    expect(header!.length).toBe(HEADER_BYTES);
    expect([length, type]).toEqual([head.length + 7, COMMIT]);
    expect(recordCrc(type, payload)).toBe(crc);
    expect(recordCrc(UPDATE, payload)).not.toBe(crc);
    const damaged = Buffer.concat(payload);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
    expect(recordCrc(COMMIT, [damaged])).not.toBe(crc);
    expect(decodeHeader(record(DELETE, [encodeDelete(a)])[0]!).length).toBe(8);
  });
});

describe('the log backend', () => {
  const spoolDir = spoolPerTest();

  /**
   * Without zeros written ahead, unless a test asks for them: a segment's
   * file then ends where its records end, which most tests below use to
   * find a record. The ones that follow this test that layout with zeros.
   */
  async function open(spool: string, options: Partial<LogBackendOptions> = {}) {
    const { lines, log } = logSink();
    const q = await openLogBackend({ spool, log, preallocateBytes: 0, ...options });
    return { q, lines };
  }

  /** Where the records of a segment end when zeros follow them: after its last byte that is not zero (content here is text). */
  const recordsEnd = (spool: string, seq: number) => {
    const bytes = readFileSync(segmentPath(spool, seq));
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    return end;
  };

  it('writes zeros ahead of its records in 1 MiB steps, and at start-up reads up to them without a word', async () => {
    const spool = spoolDir();
    let { q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES });
    const one = await commitMessage(q, 'one');
    const afterOne = recordsEnd(spool, 1);
    expect(statSync(segmentPath(spool, 1)).size).toBe(1024 * 1024);
    await q.close();

    ({ q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES }));
    expect(lines).toEqual([]);
    const two = await commitMessage(q, 'two');
    expect(recordsEnd(spool, 1)).toBeGreaterThan(afterOne); // right after the first, over the zeros
    expect(statSync(segmentPath(spool, 1)).size).toBe(1024 * 1024);
    await q.close();

    ({ q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES }));
    expect(lines).toEqual([]);
    expect((await recoverAll(q)).sort(byId)).toEqual([...one, ...two].sort(byId));
    expect(await contentOf(q, two[0]!.messageId)).toBe('two');
    await q.close();
  });

  it('writes more zeros when the records reach the end of those it wrote before', async () => {
    const spool = spoolDir();
    const { q } = await open(spool, { preallocateBytes: 4096 });
    await commitMessage(q, 'x'.repeat(3000));
    expect(statSync(segmentPath(spool, 1)).size).toBe(4096);
    await commitMessage(q, 'y'.repeat(3000));
    expect(statSync(segmentPath(spool, 1)).size).toBe(8192);
    await q.close();
  });

  it('cuts off a record that a crash tore in the space written ahead, as a commit that never completed', async () => {
    const spool = spoolDir();
    let { q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES });
    const kept = await commitMessage(q, 'one');
    const tornAt = recordsEnd(spool, 1);
    await commitMessage(q, `two: only the first half of this record reached the disk ${'x'.repeat(2000)}`);
    await q.close();
    // The second half of the record's blocks never written: the zeros written ahead are still there.
    const bytes = readFileSync(segmentPath(spool, 1));
    const end = recordsEnd(spool, 1);
    bytes.fill(0, tornAt + Math.floor((end - tornAt) / 2), end);
    writeFileSync(segmentPath(spool, 1), bytes);

    ({ q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES }));
    expect(lines).toEqual([
      `info: queue: log/00000001: the last record, at offset ${tornAt} (checksum mismatch), is a commit that never completed: ${1024 * 1024 - tornAt} bytes cut off`,
    ]);
    expect(statSync(segmentPath(spool, 1)).size).toBe(tornAt);
    expect(await recoverAll(q)).toEqual(kept);
    expect(existsSync(join(spool, 'corrupt'))).toBe(false);
    await q.close();
  });

  it('cuts a segment to its records before the next one begins, so that only the last one has zeros', async () => {
    const spool = spoolDir();
    let { q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES, segmentBytes: 2500 });
    const all = [];
    for (let n = 1; n <= 3; n++) all.push(...(await commitMessage(q, `message ${n} ${'x'.repeat(1000)}`)));
    await q.close();
    expect(segmentFiles(spool)).toEqual(['00000001', '00000002']);
    expect(statSync(segmentPath(spool, 1)).size).toBe(recordsEnd(spool, 1));
    expect(statSync(segmentPath(spool, 2)).size).toBe(1024 * 1024);

    ({ q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES, segmentBytes: 2500 }));
    expect(lines).toEqual([]);
    expect((await recoverAll(q)).sort(byId)).toEqual(all.sort(byId));
    await q.close();
  });

  it('cuts off a torn tail in the last segment, and keeps the commits before it', async () => {
    const spool = spoolDir();
    let { q } = await open(spool);
    const kept = [...(await commitMessage(q, 'one')), ...(await commitMessage(q, 'two', ['x', 'y']))];
    const tornAt = statSync(segmentPath(spool, 1)).size;
    await commitMessage(q, 'three: this record is torn in half by a crash');
    await q.close();
    truncateSync(segmentPath(spool, 1), tornAt + Math.floor((statSync(segmentPath(spool, 1)).size - tornAt) / 2));

    let lines: string[];
    ({ q, lines } = await open(spool));
    expect(lines).toEqual([
      expect.stringMatching(/^info: queue: log\/00000001: the last record, at offset \d+ \(runs past the end of the file\), is a commit that never completed: \d+ bytes cut off$/),
    ]);
    expect(statSync(segmentPath(spool, 1)).size).toBe(tornAt);
    expect((await recoverAll(q)).sort(byId)).toEqual(kept.sort(byId));
    const [after] = await commitMessage(q, 'four');
    await q.close();

    ({ q, lines } = await open(spool));
    expect(lines).toEqual([]);
    expect((await recoverAll(q)).sort(byId)).toEqual([...kept, after!].sort(byId));
    expect(await contentOf(q, after!.messageId)).toBe('four');
    expect(existsSync(join(spool, 'corrupt'))).toBe(false);
    await q.close();
  });

  it('takes zeros at the end of the last segment for space written ahead: nothing to say, and the next record goes there', async () => {
    const spool = spoolDir();
    let { q } = await open(spool);
    const kept = await commitMessage(q, 'kept');
    await q.close();
    const good = statSync(segmentPath(spool, 1)).size;
    writeFileSync(segmentPath(spool, 1), Buffer.alloc(4096), { flag: 'a' });

    let lines: string[];
    ({ q, lines } = await open(spool));
    expect(lines).toEqual([]);
    expect(await recoverAll(q)).toEqual(kept);
    const next = await commitMessage(q, 'next');
    expect(statSync(segmentPath(spool, 1)).size).toBe(good + 4096);
    await q.close();

    ({ q, lines } = await open(spool));
    expect(lines).toEqual([]);
    expect((await recoverAll(q)).sort(byId)).toEqual([...kept, ...next].sort(byId));
    await q.close();
  });

  it('reports a bad record in the last segment that good records follow: damage, not a crash', async () => {
    const spool = spoolDir();
    let { q } = await open(spool);
    const [first] = await commitMessage(q, 'first');
    const badAt = statSync(segmentPath(spool, 1)).size;
    await commitMessage(q, 'second, damaged');
    await commitMessage(q, 'third, lost with it');
    await q.close();
    const bytes = readFileSync(segmentPath(spool, 1));
    bytes.writeUInt8(bytes.readUInt8(badAt + HEADER_BYTES + 20) ^ 0xff, badAt + HEADER_BYTES + 20);
    writeFileSync(segmentPath(spool, 1), bytes);

    let lines: string[];
    ({ q, lines } = await open(spool));
    expect(lines).toEqual([
      `warn: queue: log/00000001: bad record at offset ${badAt} (checksum mismatch); the records after it in this segment are lost; copied to corrupt/log-00000001`,
    ]);
    expect(await recoverAll(q)).toEqual([first]);
    await q.close();
  });

  it('reports a bad record in an older segment, copies it to corrupt/, and recovers everything else', async () => {
    const spool = spoolDir();
    // Records of about 1.6 KiB: two per segment.
    let { q } = await open(spool, { segmentBytes: 2500 });
    const body = (n: number) => `message ${n} ${'x'.repeat(1000)}`;
    const [a] = await commitMessage(q, body(1));
    const badAt = statSync(segmentPath(spool, 1)).size;
    await commitMessage(q, body(2)); // damaged below
    const rest = [(await commitMessage(q, body(3)))[0]!, (await commitMessage(q, body(4)))[0]!, (await commitMessage(q, body(5)))[0]!];
    await q.close();
    expect(segmentFiles(spool)).toEqual(['00000001', '00000002', '00000003']);
    const bytes = readFileSync(segmentPath(spool, 1));
    bytes.writeUInt8(bytes.readUInt8(badAt + HEADER_BYTES + 100) ^ 0xff, badAt + HEADER_BYTES + 100);
    writeFileSync(segmentPath(spool, 1), bytes);

    let lines: string[];
    ({ q, lines } = await open(spool, { segmentBytes: 2500 }));
    expect(lines).toEqual([
      `warn: queue: log/00000001: bad record at offset ${badAt} (checksum mismatch); the records after it in this segment are lost; copied to corrupt/log-00000001`,
    ]);
    expect(readFileSync(join(spool, 'corrupt', 'log-00000001'))).toEqual(bytes);
    expect((await recoverAll(q)).sort(byId)).toEqual([a!, ...rest].sort(byId));
    for (const [i, e] of [a!, ...rest].entries()) expect(await contentOf(q, e.messageId)).toBe(body(i === 0 ? 1 : i + 2));
    await q.close();

    // Cut at the bad record: the next start-up finds nothing to report.
    ({ q, lines } = await open(spool, { segmentBytes: 2500 }));
    expect(lines).toEqual([]);
    expect(await recoverAll(q)).toHaveLength(4);
    await q.close();
  });

  it('rotates segments, and removes them from the oldest end only', async () => {
    const spool = spoolDir();
    let { q } = await open(spool, { segmentBytes: 1 }); // a new segment for every flush
    const [m1, m2, m3, m4] = [
      (await commitMessage(q, 'm1'))[0]!, (await commitMessage(q, 'm2'))[0]!,
      (await commitMessage(q, 'm3'))[0]!, (await commitMessage(q, 'm4'))[0]!,
    ];
    expect(q.segmentNumbers).toEqual([1, 2, 3, 4]);

    await q.deleteEnvelope(m2.id); // segment 2 holds nothing live, but segment 1 does
    await q.updateEnvelope({ ...m4, attempts: 1 }); // carries the DELETE: segment 5
    expect(q.segmentNumbers).toEqual([1, 2, 3, 4, 5]);

    await q.deleteEnvelope(m1.id);
    expect(q.segmentNumbers).toEqual([3, 4, 5]);
    await q.close(); // writes the DELETE of m1, in segment 6
    expect(segmentFiles(spool)).toEqual(['00000003', '00000004', '00000005', '00000006']);

    ({ q } = await open(spool, { segmentBytes: 1 }));
    expect((await recoverAll(q)).sort(byId)).toEqual([m3, { ...m4, attempts: 1 }].sort(byId));
    await q.close();
  });

  // The second case copies content too large for memory: streamed from the old segment into the new one.
  it.each([
    { what: 'a small message', size: 17, filler: 1000, segmentBytes: 4096 },
    { what: 'a large message', size: 300 * 1024, filler: 200 * 1024, segmentBytes: 1536 * 1024 },
  ])('copies $what deferred for long forward, so that the segment it pinned can go', async ({ size, filler, segmentBytes }) => {
    const spool = spoolDir();
    const options = { segmentBytes, compactAbove: 2 };
    let { q, lines } = await open(spool, options);
    const content = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31) % 256));
    const [deferred] = await commitMessage(q, content, ['late']);
    const tried = { ...deferred!, attempts: 1, lastTryAt: deferred!.createdAt + 60, lastError: '421 try later' };
    await q.updateEnvelope(tried);
    for (let i = 0; i < 100 && q.segmentNumbers.includes(1); i++) {
      const [e] = await commitMessage(q, Buffer.alloc(filler, i));
      await q.deleteEnvelope(e!.id);
      await new Promise((resolve) => setImmediate(resolve)); // let a compaction run
    }
    expect(q.segmentNumbers).not.toContain(1);
    expect(await q.loadEnvelope(deferred!.id)).toEqual(tried);
    expect((await readAll(await q.openMessage(deferred!.messageId))).equals(content)).toBe(true);
    await q.close();
    // The file goes after the segment leaves the list, on the pool; close() waits for it.
    expect(segmentFiles(spool)).not.toContain('00000001');
    expect(lines).toEqual([]);

    ({ q, lines } = await open(spool, options));
    expect(await recoverAll(q)).toEqual([tried]);
    expect((await readAll(await q.openMessage(deferred!.messageId))).equals(content)).toBe(true);
    expect(lines).toEqual([]);
    await q.close();
  });

  describe('when a segment is removed from under it', () => {
    it('copies what the current one holds to a new segment before the flush that found it returns', async () => {
      const spool = spoolDir();
      let { q, lines } = await open(spool);
      const [m1] = await commitMessage(q, 'one');
      rmSync(segmentPath(spool, 1));
      const [m2] = await commitMessage(q, 'two'); // lands in the removed file; the check after its flush finds it
      expect(lines).toEqual([
        `warn: queue: log segment ${segmentPath(spool, 1)} was removed while in use: copying what is live in it to a new segment`,
        'info: queue: 2 messages copied out of the removed log segment',
      ]);
      const [m3] = await commitMessage(q, 'three');
      expect(q.segmentNumbers).toEqual([2]);
      await q.close();

      ({ q, lines } = await open(spool));
      expect((await recoverAll(q)).sort(byId)).toEqual([m1!, m2!, m3!].sort(byId));
      expect(await contentOf(q, m2!.messageId)).toBe('two');
      expect(lines).toEqual([]);
      await q.close();
    });

    it('empties the older segments too, so that a DELETE lost with the removed one brings nothing back', async () => {
      const spool = spoolDir();
      const options = { segmentBytes: 1, checkSegmentsEveryMs: 0 }; // a segment per flush; every segment checked each time
      let { q, lines } = await open(spool, options);
      const [a, b] = await commitMessage(q, 'to two', ['a', 'b']); // segment 1
      const [m2] = await commitMessage(q, 'm2'); // segment 2
      await q.deleteEnvelope(a!.id);
      const [m3] = await commitMessage(q, 'm3'); // segment 3: the DELETE of a, then m3
      expect(q.segmentNumbers).toEqual([1, 2, 3]);
      rmSync(segmentPath(spool, 3));
      const [m4] = await commitMessage(q, 'm4');
      expect(lines).toEqual([
        `warn: queue: log segment ${segmentPath(spool, 3)} was removed while in use: copying what is live in it to a new segment`,
        'info: queue: 3 messages copied out of the removed log segment and those before it',
      ]);
      await q.close(); // segments are unlinked in the background; close() waits for them
      expect(segmentFiles(spool)).not.toContain('00000001');

      ({ q } = await open(spool, options));
      expect((await recoverAll(q)).sort(byId)).toEqual([b!, m2!, m3!, m4!].sort(byId));
      await q.close();
    });
  });

  it('spills a message larger than memory to log/incoming/, and gives it back byte for byte', async () => {
    const spool = spoolDir();
    let { q } = await open(spool);
    const content = Buffer.from(Array.from({ length: 3 * SPILL_BYTES + 12345 }, (_, i) => (i * 7919) % 251));
    const message = await q.createMessage();
    const spilled = join(spool, 'log', 'incoming', formatMessageId(message.id));
    for (let at = 0; at < content.length; at += 16 * 1024) {
      await message.write(content.subarray(at, at + 16 * 1024));
      expect(existsSync(spilled)).toBe(at + 16 * 1024 > SPILL_BYTES);
    }
    const [e] = await message.commit([template()]);
    expect(readdirSync(join(spool, 'log', 'incoming'))).toEqual([]);
    expect((await readAll(await q.openMessage(e!.messageId))).equals(content)).toBe(true);

    const dropped = await q.createMessage();
    await dropped.write(Buffer.alloc(SPILL_BYTES + 1));
    expect(readdirSync(join(spool, 'log', 'incoming'))).toEqual([formatMessageId(dropped.id)]);
    await dropped.abort();
    expect(readdirSync(join(spool, 'log', 'incoming'))).toEqual([]);
    await q.close();

    ({ q } = await open(spool));
    expect(await recoverAll(q)).toEqual([e]);
    expect((await readAll(await q.openMessage(e!.messageId))).equals(content)).toBe(true);
    await q.close();
  });

  it('keeps a segment readable for a delivery in progress after it is removed', async () => {
    const spool = spoolDir();
    const { q } = await open(spool, { segmentBytes: 1 });
    const content = Buffer.alloc(200 * 1024, 'z');
    const [e] = await commitMessage(q, content);
    await commitMessage(q, 'next');
    const stream = await q.openMessage(e!.messageId);
    await q.deleteEnvelope(e!.id);
    expect(q.segmentNumbers).not.toContain(1);
    expect((await readAll(stream)).equals(content)).toBe(true);
    await q.close();
  });

  it('writes deletes nobody waited for with the next flush, without an fdatasync of their own', async () => {
    const spool = spoolDir();
    const syncs: string[] = [];
    const io: SpoolIo = { ...durableIo, syncFile: (file, path) => (syncs.push(path), durableIo.syncFile(file, path)) };
    let { q } = await open(spool, { io });
    const [a1, a2] = await commitMessage(q, 'a', ['a1', 'a2']);
    const [b] = await commitMessage(q, 'b');
    const synced = syncs.length;
    const size = statSync(segmentPath(spool, 1)).size;
    void q.deleteEnvelope(a1!.id);
    void q.deleteEnvelope(b!.id);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(statSync(segmentPath(spool, 1)).size).toBeGreaterThan(size); // written at the end of the turn
    expect(syncs.length).toBe(synced); // but not fdatasync'd
    void q.deleteEnvelope(a2!.id);
    await q.close(); // flushes and fdatasyncs what is left
    expect(syncs.length).toBe(synced + 1);

    ({ q } = await open(spool));
    expect(await recoverAll(q)).toEqual([]);
    await expect(q.openMessage(a1!.messageId)).rejects.toThrow(/no message/);
    await q.close();
  });

  it('keeps the DELETEs of a flush that failed for the next one, so that a delivered envelope does not come back', async () => {
    const spool = spoolDir();
    let failNext = false;
    const io: SpoolIo = {
      ...durableIo,
      syncFile: (file, path) => (failNext ? ((failNext = false), Promise.reject(new Error('EIO: i/o error, fdatasync'))) : durableIo.syncFile(file, path)),
    };
    let { q } = await open(spool, { io });
    // Two recipients, one still waiting: the segment stays, and what it says about the other one counts.
    const [delivered, waiting] = await commitMessage(q, 'for two', ['bob', 'carol']);
    failNext = true;
    void q.deleteEnvelope(delivered!.id); // its DELETE rides with the next commit, whose flush fails
    await expect(commitMessage(q, 'refused')).rejects.toThrow(/EIO/);
    const kept = await commitMessage(q, 'kept');
    await q.close();

    ({ q } = await open(spool));
    expect((await recoverAll(q)).sort(byId)).toEqual([waiting!, ...kept].sort(byId));
    await q.close();
  });

  describe('on a full disk', () => {
    const mounts: string[] = [];
    afterEach(() => {
      for (const dir of mounts.splice(0)) execFileSync('umount', ['--lazy', dir]);
    });
    /** A spool on a tmpfs of `kib` KiB: a disk that fills up. Needs root; skipped elsewhere. */
    const smallSpool = (kib: number) => {
      const spool = spoolDir();
      mkdirSync(spool, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', spool]);
      mounts.push(spool);
      return spool;
    };
    const canMount = process.getuid?.() === 0 && (() => {
      try {
        execFileSync('mount', ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();

    it.skipIf(!canMount)('skips the zeros written ahead when they do not fit, rather than refusing records that do', async () => {
      const spool = smallSpool(256); // the zeros would take 1 MiB
      let { q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES });
      const one = await commitMessage(q, 'one');
      const two = await commitMessage(q, 'two');
      await q.close();
      ({ q, lines } = await open(spool, { preallocateBytes: DEFAULT_PREALLOCATE_BYTES }));
      expect(lines).toEqual([]);
      expect((await recoverAll(q)).sort(byId)).toEqual([...one, ...two].sort(byId));
      await q.close();
    });

    it.skipIf(!canMount)('refuses commits while it is full, without leaving a file behind for each, and takes them again once there is room', async () => {
      const spool = smallSpool(256);
      let { q } = await open(spool); // no zeros ahead: they would take the space the filler is to take
      const before = await commitMessage(q, 'before');
      const filler = join(spool, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(512 * 1024));
      } catch {
        // ENOSPC: the disk is full, as wanted
      }
      for (let i = 0; i < 20; i++) await expect(commitMessage(q, `refused ${i} ${'x'.repeat(8000)}`)).rejects.toThrow(/ENOSPC/);
      expect(segmentFiles(spool).length).toBeLessThanOrEqual(2);
      rmSync(filler);
      const after = await commitMessage(q, 'after');
      await q.close();

      ({ q } = await open(spool));
      expect((await recoverAll(q)).sort(byId)).toEqual([...before, ...after].sort(byId));
      expect(await contentOf(q, after[0]!.messageId)).toBe('after');
      await q.close();
    });
  });

  it('drops an envelope that no longer validates, keeps its text in corrupt/, and says so once', async () => {
    const spool = spoolDir();
    let { q, lines } = await open(spool);
    const [relayed] = await commitMessage(q, 'relayed', ['bob']);
    const [local] = await q.createMessage().then(async (m) => {
      await m.write(Buffer.from('local'));
      return m.commit([template('carol', { dispatcher: 'local' })]);
    });
    await q.close();

    const validate = { dispatchers: new Set(['local']) }; // smtpd.conf lost its `relay` action
    ({ q, lines } = await open(spool, { validate }));
    const name = formatEnvelopeId(relayed!.id);
    expect(lines).toEqual([`warn: queue: envelope ${name}: unknown dispatcher: action "relay" is not in smtpd.conf; dropped; kept in corrupt/${name}`]);
    expect(readFileSync(join(spool, 'corrupt', name), 'utf8')).toContain('"dispatcher":"relay"');
    expect(await recoverAll(q)).toEqual([local]);
    await expect(q.openMessage(relayed!.messageId)).rejects.toThrow(/no message/);
    await q.close();

    ({ q, lines } = await open(spool, { validate }));
    expect(lines).toEqual([]);
    expect(await recoverAll(q)).toEqual([local]);
    await q.close();
  });

  it('drops an envelope whose message has no COMMIT in the log', async () => {
    const spool = spoolDir();
    let { q, lines } = await open(spool, { segmentBytes: 1 });
    const [lost] = await commitMessage(q, 'its segment will be lost');
    await q.updateEnvelope({ ...lost!, attempts: 1 }); // segment 2
    await q.close();
    const { rmSync } = await import('node:fs');
    rmSync(segmentPath(spool, 1));

    ({ q, lines } = await open(spool, { segmentBytes: 1 }));
    const name = formatEnvelopeId(lost!.id);
    expect(lines).toEqual([`warn: queue: envelope ${name}: its message has no content record; dropped; kept in corrupt/${name}`]);
    expect(await recoverAll(q)).toEqual([]);
    await q.close();
    ({ q, lines } = await open(spool, { segmentBytes: 1 }));
    expect(lines).toEqual([]);
    await q.close();
  });
});
