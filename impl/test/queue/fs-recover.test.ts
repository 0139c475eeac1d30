/**
 * Start-up and recovery of the fs backend: what was never committed is
 * removed, what was committed comes back, and what fails validation goes
 * to corrupt/ with a log line instead of being trusted.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFsBackend } from '../../src/queue/fs-backend.ts';
import { formatEnvelopeId, formatMessageId } from '../../src/queue/ids.ts';
import type { Envelope } from '../../src/queue/types.ts';
import { commitMessage, contentPath, envelopePath, logSink, readAll, recoverAll, spoolPerTest } from './helpers.ts';

describe('the fs spool at start-up', () => {
  const spoolDir = spoolPerTest();

  const queueFiles = (spool: string) =>
    readdirSync(join(spool, 'queue')).flatMap((b) => readdirSync(join(spool, 'queue', b)).map((f) => `${b}/${f}`));

  it('removes everything no commit covers, and keeps what one does', async () => {
    const spool = spoolDir();
    let q = await openFsBackend({ spool, log: logSink().log });
    const [kept] = await commitMessage(q, 'kept', ['bob']);
    const [halfDeleted, other] = await commitMessage(q, 'half deleted', ['carol', 'dave']);
    const receiving = await q.createMessage();
    await receiving.write(Buffer.from('never committed'));
    await q.close();

    // What a crash can leave: an envelope written before its commit record,
    // content whose envelopes were deleted, a temporary file of an update.
    writeFileSync(join(spool, 'queue', '7f', '7f00000100000001'), '{}\n');
    writeFileSync(join(spool, 'temporary', 'whatever.1'), 'x');
    const { rmSync } = await import('node:fs');
    rmSync(envelopePath(spool, halfDeleted!));
    rmSync(envelopePath(spool, other!));

    const { lines, log } = logSink();
    q = await openFsBackend({ spool, log });
    expect(readdirSync(join(spool, 'incoming'))).toEqual([]);
    expect(readdirSync(join(spool, 'temporary'))).toEqual([]);
    expect(queueFiles(spool).sort()).toEqual(
      [`${formatMessageId(kept!.messageId).slice(0, 2)}/${formatMessageId(kept!.messageId)}`,
        `${formatEnvelopeId(kept!.id).slice(0, 2)}/${formatEnvelopeId(kept!.id)}`].sort(),
    );
    expect(lines).toEqual(['info: queue: removed 2 files of messages never committed or half deleted']);
    expect(await recoverAll(q)).toEqual([kept]);
    expect((await readAll(await q.openMessage(kept!.messageId))).toString()).toBe('kept');
    await q.close();
  });

  it('logs and ignores files that are not the queue\'s', async () => {
    const spool = spoolDir();
    await (await openFsBackend({ spool, log: logSink().log })).close();
    writeFileSync(join(spool, 'queue', '00', 'README'), 'hello');
    writeFileSync(join(spool, 'queue', '00', '11223344'), 'in the wrong bucket');
    const { lines, log } = logSink();
    const q = await openFsBackend({ spool, log });
    expect(lines.sort()).toEqual([
      'warn: queue: bogus file queue/00/11223344, ignored',
      'warn: queue: bogus file queue/00/README, ignored',
    ]);
    expect(await recoverAll(q)).toEqual([]);
    await q.close();
  });

  it('moves envelopes that fail validation to corrupt/, with their content when none is left', async () => {
    const spool = spoolDir();
    let q = await openFsBackend({ spool, log: logSink().log });
    const [a1, a2] = await commitMessage(q, 'message a', ['a1', 'a2']);
    const [b] = await commitMessage(q, 'message b', ['b']);
    const [c] = await commitMessage(q, 'message c', ['c']);
    await q.close();

    writeFileSync(envelopePath(spool, a1!), 'garbage\n');
    const v2 = readFileSync(envelopePath(spool, b!), 'utf8').replace('"version":1', '"version":2');
    writeFileSync(envelopePath(spool, b!), v2);
    // c's file holds a valid envelope, but another one: never trust a file's name alone.
    writeFileSync(envelopePath(spool, c!), readFileSync(envelopePath(spool, a2!)));

    const { lines, log } = logSink();
    q = await openFsBackend({ spool, log });
    expect(await recoverAll(q)).toEqual([a2]);
    const [ida1, idb, idc] = [a1, b, c].map((e) => formatEnvelopeId(e!.id));
    const [msgb, msgc] = [b, c].map((e) => formatMessageId(e!.messageId));
    expect(lines.sort()).toEqual([
      `warn: queue: envelope ${ida1}: not valid JSON; moved to corrupt/`,
      `warn: queue: envelope ${idb}: version mismatch (2); moved to corrupt/`,
      `warn: queue: envelope ${idc}: id does not match file name; moved to corrupt/`,
      `warn: queue: message ${msgb}: no valid envelope left; moved to corrupt/`,
      `warn: queue: message ${msgc}: no valid envelope left; moved to corrupt/`,
    ].sort());
    expect(readdirSync(join(spool, 'corrupt')).sort()).toEqual([ida1, idb, idc, msgb, msgc].sort());
    expect(readFileSync(join(spool, 'corrupt', msgb!), 'utf8')).toBe('message b');
    await expect(q.openMessage(b!.messageId)).rejects.toThrow();
    expect((await readAll(await q.openMessage(a2!.messageId))).toString()).toBe('message a');
    await q.close();
  });

  it('never trusts an envelope loaded while running either, and never overwrites evidence', async () => {
    const spool = spoolDir();
    const { lines, log } = logSink();
    const q = await openFsBackend({ spool, log });
    const [e] = await commitMessage(q, 'x', ['bob']);
    mkdirSync(join(spool, 'corrupt'), { recursive: true });
    writeFileSync(join(spool, 'corrupt', formatEnvelopeId(e!.id)), 'an older corrupt file');
    writeFileSync(envelopePath(spool, e!), `${'x'.repeat(70_000)}\n`);
    expect(await q.loadEnvelope(e!.id)).toBeUndefined();
    expect(lines).toEqual([
      `warn: queue: envelope ${formatEnvelopeId(e!.id)}: too large; moved to corrupt/`,
      `warn: queue: message ${formatMessageId(e!.messageId)}: no valid envelope left; moved to corrupt/`,
    ]);
    expect(readdirSync(join(spool, 'corrupt')).sort()).toEqual(
      [formatEnvelopeId(e!.id), `${formatEnvelopeId(e!.id)}.1`, formatMessageId(e!.messageId)].sort(),
    );
    expect(queueFiles(spool)).toEqual([]);
    await q.close();
  });

  it('does not hand out an id that is on disk, and does not recover twice what it committed', async () => {
    const spool = spoolDir();
    let q = await openFsBackend({ spool, log: logSink().log });
    const before = await commitMessage(q, 'before', ['a']);
    await q.close();
    q = await openFsBackend({ spool, log: logSink().log });
    const after = await commitMessage(q, 'after', ['b']);
    expect(after[0]!.messageId).not.toBe(before[0]!.messageId);
    expect(await recoverAll(q)).toEqual(before); // `after` was announced at commit
    await q.close();
  });
});
