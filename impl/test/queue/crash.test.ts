/**
 * Crash recovery, for real: a child process commits in a loop and is
 * killed with SIGKILL at a random moment, several times over the same
 * spool. After each kill, every message whose commit had resolved (the
 * child logged it, fsync'd, after the promise resolved) must come back
 * whole: content byte for byte, every envelope. Whatever was in flight
 * must be gone: nothing left in incoming/, no envelope without content,
 * nothing in corrupt/.
 *
 * The same for the log backend, whose commits are records appended to a
 * segment: the kills land while records are being written, so start-up
 * finds torn tails to cut off; and everything it recovers must be a
 * message the child set out to commit (its intents file), whole.
 *
 * SIGKILL stops the process at any instruction, but the kernel keeps what
 * it was given: this tests the queue's own logic (ordering, purge at
 * start-up, recovery), not the disk. Losing power also loses what was
 * not fsync'd; that part of the argument rests on the order of the fsyncs,
 * which fs-durability.test.ts checks call by call.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openFsBackend } from '../../src/queue/fs-backend.ts';
import { formatEnvelopeId, formatMessageId, parseEnvelopeId, parseMessageId } from '../../src/queue/ids.ts';
import { openLogBackend } from '../../src/queue/log-backend.ts';
import { logSink, readAll, recoverAll, tempSpool } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../../..');
const ROUNDS = 4;

/** Runs the child until it has committed a few messages, then kills it after a random delay. */
async function commitThenDie(spool: string, logPath: string, backend: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures/commit-loop.ts'), spool, logPath, '8', backend], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`commit-loop exited early with ${code}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 400));
  child.kill('SIGKILL');
  const [, signal] = await exited;
  expect(signal).toBe('SIGKILL');
}

/** The promises in the log: message id to content hash and envelope ids. */
function promises(logPath: string): Map<string, { hash: string; envelopes: string[] }> {
  const out = new Map<string, { hash: string; envelopes: string[] }>();
  if (!existsSync(logPath)) return out;
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const [msgid, hash, envelopes] = line.split(' ');
    if (msgid && hash && envelopes) out.set(msgid, { hash, envelopes: envelopes.split(',').sort() });
  }
  return out;
}

/** What the child set out to commit (log backend): message id to content hash. */
function intents(logPath: string): Map<string, string> {
  const path = `${logPath}.intents`;
  const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
  return new Map(lines.filter((l) => l.includes(' ')).map((l) => l.split(' ') as [string, string]));
}

describe.each(['fs', 'log'])('a %s queue process killed while committing', (backend) => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it('keeps every message whose commit resolved, whole, and nothing half-written', { timeout: 120_000 }, async () => {
    const tmp = tempSpool();
    cleanup = tmp.cleanup;
    const logPath = join(dirname(tmp.spool), 'committed.log');
    let leftovers = 0;

    for (let round = 0; round < ROUNDS; round++) {
      await commitThenDie(tmp.spool, logPath, backend);
      if (backend === 'fs') leftovers += readdirSync(join(tmp.spool, 'incoming')).length;

      const { lines, log } = logSink();
      const queue = backend === 'fs' ? await openFsBackend({ spool: tmp.spool, log }) : await openLogBackend({ spool: tmp.spool, log });
      const recovered = new Map<string, string[]>();
      for (const e of await recoverAll(queue)) {
        const msgid = formatMessageId(e.messageId);
        recovered.set(msgid, [...(recovered.get(msgid) ?? []), formatEnvelopeId(e.id)]);
      }

      const promised = promises(logPath);
      expect(promised.size).toBeGreaterThan(0);
      for (const [msgid, { hash, envelopes }] of promised) {
        expect(recovered.get(msgid)?.sort(), `envelopes of ${msgid}`).toEqual(envelopes);
        const content = await readAll(await queue.openMessage(parseMessageId(msgid)!));
        expect(createHash('sha256').update(content).digest('hex'), `content of ${msgid}`).toBe(hash);
      }
      // Committed but killed before logging: whole too, as far as we can tell.
      for (const msgid of recovered.keys()) await readAll(await queue.openMessage(parseMessageId(msgid)!));

      if (backend === 'fs') {
        // Nothing uncommitted survived start-up.
        expect(readdirSync(join(tmp.spool, 'incoming'))).toEqual([]);
        expect(readdirSync(join(tmp.spool, 'corrupt'))).toEqual([]);
        const files = readdirSync(join(tmp.spool, 'queue')).flatMap((b) => readdirSync(join(tmp.spool, 'queue', b)));
        const envelopeFiles = files.filter((f) => parseEnvelopeId(f) !== undefined);
        const contentFiles = files.filter((f) => parseMessageId(f) !== undefined);
        expect(new Set(contentFiles)).toEqual(new Set(recovered.keys()));
        expect(envelopeFiles.sort()).toEqual([...recovered.values()].flat().sort());
      } else {
        // Nothing but what the child set out to commit, each whole; nothing else on disk.
        const intended = intents(logPath);
        for (const msgid of recovered.keys()) {
          const content = await readAll(await queue.openMessage(parseMessageId(msgid)!));
          expect(createHash('sha256').update(content).digest('hex'), `content of ${msgid}`).toBe(intended.get(msgid));
        }
        expect(readdirSync(join(tmp.spool, 'log', 'incoming'))).toEqual([]);
        expect(existsSync(join(tmp.spool, 'corrupt'))).toBe(false);
      }
      expect(lines.filter((l) => l.startsWith('warn'))).toEqual([]);
      await queue.close();
    }
    // The kills did land mid-message: there was something to purge. (The
    // log backend keeps most content in memory until commit: nothing to count.)
    if (backend === 'fs') expect(leftovers).toBeGreaterThan(0);
  });
});
