import { afterEach, describe, expect, it } from 'vitest';
import type { QueueBackend } from '../../src/queue/backend.ts';
import { openQueueBackend, QueueProfile } from '../../src/queue/index.ts';
import { messageIdOf } from '../../src/queue/ids.ts';
import { commitMessage, logSink, readAll, recoverAll, template, tempSpool } from './helpers.ts';

// The same behaviour from every backend: the layers above may swap them.
describe.each(['fs', 'log', 'ram'])('the %s backend', (name) => {
  let cleanup = async () => {};
  afterEach(() => cleanup());

  let spool = '';
  let current: QueueBackend | undefined;

  async function open(): Promise<QueueBackend> {
    const tmp = tempSpool();
    spool = tmp.spool;
    current = await openQueueBackend(name, { spool, log: logSink().log });
    cleanup = async () => {
      await current?.close(); // log's close() flushes and fdatasyncs: the spool must still be there
      tmp.cleanup();
    };
    return current;
  }

  /** What a restarted queue process sees: fs and log open the spool again; ram, having no disk, is the same queue. */
  async function restart(): Promise<QueueBackend> {
    if (name === 'ram' || !current) return current!;
    await current.close();
    current = await openQueueBackend(name, { spool, log: logSink().log });
    return current;
  }

  it('commits content written in chunks, and gives it back whole', async () => {
    const q = await open();
    const message = await q.createMessage();
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(i % 70)}\r\n`);
    for (const line of lines) await message.write(Buffer.from(line));
    const [envelope] = await message.commit([template('bob')]);
    expect(envelope!.messageId).toBe(message.id);
    expect(messageIdOf(envelope!.id)).toBe(message.id);
    expect((await readAll(await q.openMessage(message.id))).toString()).toBe(lines.join(''));
  });

  it('does not let the caller change what was written by reusing its buffer', async () => {
    const q = await open();
    const message = await q.createMessage();
    const buffer = Buffer.from('first\r\n');
    await message.write(buffer);
    buffer.write('XXXXX');
    await message.commit([template()]);
    expect((await readAll(await q.openMessage(message.id))).toString()).toBe('first\r\n');
  });

  it('gives each recipient an envelope, loads, updates and deletes them', async () => {
    const q = await open();
    const envelopes = await commitMessage(q, 'Subject: hi\r\n\r\nhello\r\n', ['bob', 'carol', 'dave']);
    expect(new Set(envelopes.map((e) => e.id)).size).toBe(3);
    const [bob, carol, dave] = envelopes as [typeof envelopes[0], typeof envelopes[0], typeof envelopes[0]];
    expect(await q.loadEnvelope(carol.id)).toEqual(carol);

    const tried = { ...carol, attempts: 1, lastTryAt: carol.createdAt + 60, lastError: '451 4.3.0 later' };
    await q.updateEnvelope(tried);
    expect(await q.loadEnvelope(carol.id)).toEqual(tried);

    await q.deleteEnvelope(bob.id);
    expect(await q.loadEnvelope(bob.id)).toBeUndefined();
    await q.deleteEnvelope(bob.id); // twice is harmless
    await q.deleteEnvelope(carol.id);
    expect((await readAll(await q.openMessage(bob.messageId))).toString()).toContain('hello');
    await q.deleteEnvelope(dave.id);
    await expect(q.openMessage(bob.messageId)).rejects.toThrow();
    await expect(q.updateEnvelope(tried)).rejects.toThrow(/no envelope/);
  });

  it('recovers every committed envelope after a restart, and nothing deleted or aborted', async () => {
    const q = await open();
    const committed = [
      ...(await commitMessage(q, 'one', ['a', 'b'])),
      ...(await commitMessage(q, 'two', ['c'])),
    ];
    const gone = await commitMessage(q, 'three', ['d']);
    await q.deleteEnvelope(gone[0]!.id);
    await (await q.createMessage()).abort();
    const updated = { ...committed[0]!, attempts: 3 };
    await q.updateEnvelope(updated);

    const after = await restart();
    const recovered = await recoverAll(after);
    expect(recovered.sort(byId)).toEqual([updated, ...committed.slice(1)].sort(byId));
    expect((await readAll(await after.openMessage(committed[2]!.messageId))).toString()).toBe('two');
  });

  it('forgets an aborted message, and refuses to use a message after commit or abort', async () => {
    const q = await open();
    const message = await q.createMessage();
    await message.write(Buffer.from('partial'));
    await message.abort();
    await message.abort();
    await expect(message.write(Buffer.from('more'))).rejects.toThrow(/after/);
    await expect(message.commit([template()])).rejects.toThrow(/after/);
    await expect(q.openMessage(message.id)).rejects.toThrow();

    const done = await q.createMessage();
    await done.commit([template()]);
    await expect(done.write(Buffer.from('late'))).rejects.toThrow(/after/);
  });

  it('refuses to commit without envelopes, or with one that would not validate', async () => {
    const q = await open();
    const message = await q.createMessage();
    await expect(message.commit([])).rejects.toThrow(/no envelope/);
    await expect(message.commit([template('bob', { dispatcher: '' })])).rejects.toThrow(/invalid dispatcher/);
    await message.abort(); // still possible
  });

  it('commits many messages at once, each with distinct ids', async () => {
    const q = await open();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => commitMessage(q, `message ${i}`, ['x', 'y'])),
    );
    const msgids = new Set(results.map(([e]) => e!.messageId));
    expect(msgids.size).toBe(200);
    for (const [i, [e]] of results.entries()) {
      expect((await readAll(await q.openMessage(e!.messageId))).toString()).toBe(`message ${i}`);
    }
  });
});

describe('choosing a backend', () => {
  it('refuses a name that is not a backend', async () => {
    await expect(openQueueBackend('sql')).rejects.toThrow(/unknown backend "sql" \(expected fs, log or ram\)/);
  });

  it('traces every call with its result and duration, and profiles them', async () => {
    const lines: string[] = [];
    const profile = new QueueProfile();
    const q = await openQueueBackend('ram', { trace: (l) => lines.push(l), profile });
    const [e] = await commitMessage(q, 'hello');
    await q.loadEnvelope(e!.id);
    await recoverAll(q);
    await q.deleteEnvelope(e!.id);
    await expect(q.openMessage(e!.messageId)).rejects.toThrow();

    const hex = e!.id.toString(16).padStart(16, '0');
    const ms = String.raw`\(\d+\.\d{3} ms\)`;
    const expected = [
      String.raw`queue-backend: createMessage\(\) -> ${hex.slice(0, 8)} ${ms}`,
      String.raw`queue-backend: write\(${hex.slice(0, 8)}, 5 bytes\) -> ok ${ms}`,
      String.raw`queue-backend: commit\(${hex.slice(0, 8)}, 1 envelopes\) -> ${hex} ${ms}`,
      String.raw`queue-backend: loadEnvelope\(${hex}\) -> found ${ms}`,
      String.raw`queue-backend: recover\(\) -> 1 envelopes ${ms}`,
      String.raw`queue-backend: deleteEnvelope\(${hex}\) -> ok ${ms}`,
      String.raw`queue-backend: openMessage\(${hex.slice(0, 8)}\) -> error: queue: no message ${hex.slice(0, 8)} ${ms}`,
    ];
    expect(lines).toHaveLength(expected.length);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^${expected[i]}$`)));

    const ops = Object.fromEntries(profile.snapshot().map((p) => [p.op, p.calls]));
    expect(ops).toEqual({
      createMessage: 1, write: 1, commit: 1, loadEnvelope: 1, recover: 1, deleteEnvelope: 1, openMessage: 1,
    });
    expect(profile.format()).toMatch(/^commit +calls=1 +total=\d+\.\dms +mean=\d+\.\d{3}ms$/m);
  });
});

const byId = (a: { id: bigint }, b: { id: bigint }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
