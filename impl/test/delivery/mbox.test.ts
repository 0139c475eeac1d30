/**
 * The mbox agent, read back by Python's mailbox.mbox: separators, mboxo
 * quoting, several messages in one file, the dot-lock, and the file cut
 * back to its old size when an append fails half-way. And a FIFO as the
 * target, which must never hold one of libuv's threads.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { acquireDotlock } from '../../src/delivery/dotlock.ts';
import { appendMbox, asctime, mboxFromLine } from '../../src/delivery/mbox.ts';
import { content, readMboxWithPython, tempDirPerTest, unix } from './helpers.ts';

const DATE = new Date(2024, 1, 1, 9, 5, 7);
const FAST_LOCK = { retries: 3, retryDelayMs: 20 };
const hasLockfile = spawnSync('lockfile', ['-v']).error === undefined;

describe('mbox delivery', () => {
  const freshDir = tempDirPerTest();
  const setup = () => join(freshDir(), 'bob');

  it('writes the separator with an asctime date, MAILER-DAEMON for the null sender', () => {
    expect(asctime(DATE)).toBe('Thu Feb  1 09:05:07 2024');
    expect(mboxFromLine('alice@example.org', DATE)).toBe('From alice@example.org Thu Feb  1 09:05:07 2024\n');
    expect(mboxFromLine('', DATE)).toBe('From MAILER-DAEMON Thu Feb  1 09:05:07 2024\n');
    expect(mboxFromLine('"a b"@example.org', DATE)).toBe('From "a_b"@example.org Thu Feb  1 09:05:07 2024\n');
  });

  it('appends several messages that Python reads back one by one, with From_ lines quoted mboxo-style', async () => {
    const path = setup();
    const messages = [
      'Subject: one\r\n\r\nFrom the start of a line\r\n>From already quoted\r\n>>From twice\r\n From not at the start\r\n',
      'Subject: two\r\n\r\n8-bit: caf\u00e9 \u4e2d\u6587\r\n\r\n\r\n',
      'Subject: three\r\n\r\nno final newline',
    ];
    const senders = ['alice@example.org', 'MAILER-DAEMON', 'carol@example.com'];
    for (const [i, m] of messages.entries()) {
      expect(await appendMbox(path, content(m), { from: senders[i]!, date: DATE, lock: FAST_LOCK })).toEqual({ result: 'ok', detail: path });
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(existsSync(`${path}.lock`)).toBe(false);

    const read = readMboxWithPython(path);
    expect(read.map((m) => m.from)).toEqual(senders.map((s) => `${s} Thu Feb  1 09:05:07 2024`));
    // mboxo: `From ` gets a `>`, `>From ` is left as it is; readers do not unquote.
    expect(read[0]!.bytes.toString()).toBe('Subject: one\n\n>From the start of a line\n>From already quoted\n>>From twice\n From not at the start\n');
    expect(read[1]!.bytes.equals(unix(messages[1]!))).toBe(true);
    expect(read[2]!.bytes.toString()).toBe('Subject: three\n\nno final newline\n');
    // Each message ends with a blank line before the next separator.
    expect(readFileSync(path, 'latin1')).toContain('start\n\nFrom MAILER-DAEMON ');
  });

  it('starts a new message on its own paragraph even after a writer that left none', async () => {
    const path = setup();
    writeFileSync(path, 'From x@y Thu Feb  1 09:05:07 2024\nSubject: old\n\nno blank line after me');
    await appendMbox(path, content('Subject: new\r\n\r\nhi\r\n'), { from: 'a@b', date: DATE, lock: FAST_LOCK });
    const read = readMboxWithPython(path);
    expect(read.map((m) => m.bytes.toString())).toEqual(['Subject: old\n\nno blank line after me\n', 'Subject: new\n\nhi\n']);
  });

  it('a mailbox locked by someone else is a temporary failure; a stale lock is removed', async () => {
    const path = setup();
    const held = await acquireDotlock(path);
    const busy = await appendMbox(path, content('Subject: x\r\n\r\nx\r\n'), { from: 'a@b', lock: FAST_LOCK });
    expect(busy).toMatchObject({ result: 'tempfail' });
    expect(busy.result !== 'ok' && busy.reason).toMatch(/mailbox is locked/);
    expect(existsSync(path)).toBe(false);
    await held.release();

    writeFileSync(`${path}.lock`, '99999\n');
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(`${path}.lock`, old, old);
    expect(await appendMbox(path, content('Subject: x\r\n\r\nx\r\n'), { from: 'a@b', lock: FAST_LOCK })).toMatchObject({ result: 'ok' });
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  // procmail's lockfile(1) takes the same USER.lock as procmail, mutt's
  // dotlock and liblockfile: the lock only works if both sides see it.
  it.runIf(hasLockfile)("waits for procmail's lockfile(1), and lockfile(1) waits for it", async () => {
    const path = setup();
    expect(spawnSync('lockfile', ['-r', '0', `${path}.lock`]).status).toBe(0);
    const busy = await appendMbox(path, content('Subject: x\r\n\r\nx\r\n'), { from: 'a@b', lock: FAST_LOCK });
    expect(busy.result !== 'ok' && busy.reason).toMatch(/mailbox is locked/);
    rmSync(`${path}.lock`, { force: true });

    const held = await acquireDotlock(path);
    expect(spawnSync('lockfile', ['-r', '0', `${path}.lock`]).status).not.toBe(0);
    await held.release();
    expect(spawnSync('lockfile', ['-r', '0', `${path}.lock`]).status).toBe(0);
    rmSync(`${path}.lock`, { force: true });
    expect(await appendMbox(path, content('Subject: y\r\n\r\ny\r\n'), { from: 'a@b', lock: FAST_LOCK })).toMatchObject({ result: 'ok' });
  });

  it('cuts the file back to its old size when the message cannot be read to its end', async () => {
    const path = setup();
    await appendMbox(path, content('Subject: first\r\n\r\nkept\r\n'), { from: 'a@b', date: DATE });
    const before = readFileSync(path);
    const failing = Readable.from((async function* () {
      yield Buffer.from('Subject: second\r\n\r\n');
      yield Buffer.alloc(200_000, 'x');
      throw new Error('queue read failed');
    })());
    const outcome = await appendMbox(path, failing, { from: 'a@b', date: DATE });
    expect(outcome).toMatchObject({ result: 'tempfail' });
    expect(outcome.result !== 'ok' && outcome.reason).toContain('queue read failed');
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('writes to a device such as /dev/null without a lock beside it', async () => {
    expect(await appendMbox('/dev/null', content('Subject: x\r\n\r\nx\r\n'), { from: 'a@b' })).toEqual({ result: 'ok', detail: '/dev/null' });
    expect(existsSync('/dev/null.lock')).toBe(false);
  });

  it('strict (a system mailbox): refuses a symbolic link', async () => {
    const path = setup();
    const { symlinkSync } = await import('node:fs');
    writeFileSync(`${path}.target`, '');
    symlinkSync(`${path}.target`, path);
    const outcome = await appendMbox(path, content('x\r\n'), { from: 'a@b', strict: true });
    expect(outcome).toMatchObject({ result: 'tempfail' });
    expect(readFileSync(`${path}.target`, 'utf8')).toBe('');
  });

  describe('a FIFO', () => {
    /** A FIFO in a fresh directory. */
    const fifo = () => {
      const path = join(freshDir(), 'fifo');
      execFileSync('mkfifo', [path]);
      return path;
    };
    /**
     * A reader on it, paused: a pipe socket, so no thread of the test waits
     * for data. A read before the writer opens would see the end of the
     * file: the test resumes it only once the append is under way.
     */
    const reader = (path: string) => {
      const socket = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
      const parts: Buffer[] = [];
      socket.pause();
      socket.on('data', (b: Buffer) => parts.push(b));
      const ended = new Promise((resolve) => socket.once('end', resolve));
      return { socket, text: async () => (await ended, Buffer.concat(parts).toString('utf8')) };
    };
    /**
     * The append, or 'still waiting' after `ms`. A writer still blocked in
     * open() or write() is let go at the end by a reader that drains the
     * FIFO, or it would hold a thread of the test's pool for good.
     */
    const within = async (ms: number, path: string, append: Promise<unknown>) => {
      const outcome = await Promise.race([append, sleep(ms).then(() => 'still waiting')]);
      if (outcome === 'still waiting') {
        const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
        const drain = new Socket({ fd, readable: true, writable: false }).resume();
        await append;
        drain.destroy();
      }
      return outcome;
    };

    it('with no reader, fails for now at once, saying so', async () => {
      const path = fifo();
      const outcome = await within(2000, path, appendMbox(path, content('Subject: x\r\n\r\nx\r\n'), { from: 'a@b' }));
      expect(outcome).toEqual({ result: 'tempfail', reason: `mbox ${path}: no process is reading the FIFO` });
      expect(existsSync(`${path}.lock`)).toBe(false);
    });

    it('with a reader, gets the message, a full pipe waited for without a thread', async () => {
      const path = fifo();
      const { socket, text } = reader(path);
      // 300 KB: the pipe (64 KiB) fills, and the writer waits until the reader goes on.
      setTimeout(() => socket.resume(), 300);
      const body = 'y'.repeat(199) + '\r\n';
      const outcome = await within(5000, path, appendMbox(path, content(`Subject: big\r\n\r\n${body.repeat(1500)}`), { from: 'a@b', date: DATE }));
      expect(outcome).toEqual({ result: 'ok', detail: path });
      expect(await text()).toBe(`From a@b ${asctime(DATE)}\nSubject: big\n\n${`${'y'.repeat(199)}\n`.repeat(1500)}\n`);
    });

    it('takes two large messages one after the other, never interleaved', async () => {
      const path = fifo();
      // A reader that holds the FIFO open for writing too, as a daemon
      // that reads it in a loop does: the first message's end is not the
      // end of its input, and the second finds it still there.
      const socket = new Socket({ fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
      const parts: Buffer[] = [];
      socket.on('data', (b: Buffer) => parts.push(b));
      // 200 KB each, far over PIPE_BUF: written at once, their blocks would mix.
      const message = (c: string) => content(`Subject: ${c}\r\n\r\n${`${c.repeat(99)}\r\n`.repeat(2000)}`);
      const both = Promise.all([
        appendMbox(path, message('a'), { from: 'a@b', date: DATE }),
        appendMbox(path, message('b'), { from: 'a@b', date: DATE }),
      ]);
      expect(await within(5000, path, both)).toEqual([{ result: 'ok', detail: path }, { result: 'ok', detail: path }]);
      const one = (c: string) => `From a@b ${asctime(DATE)}\nSubject: ${c}\n\n${`${c.repeat(99)}\n`.repeat(2000)}\n`;
      const expected = one('a') + one('b');
      while (Buffer.concat(parts).length < expected.length) await sleep(10);
      socket.destroy();
      expect(Buffer.concat(parts).toString('utf8')).toBe(expected);
    });

    it('whose reader takes nothing, fails for now once its patience is out', async () => {
      const path = fifo();
      const { socket } = reader(path);
      const started = Date.now();
      const message = content(`Subject: big\r\n\r\n${`${'z'.repeat(99)}\r\n`.repeat(2000)}`);
      const outcome = await within(2500, path, appendMbox(path, message, { from: 'a@b', fifoPatienceMs: 300 }));
      expect(outcome).toEqual({ result: 'tempfail', reason: `mbox ${path}: the FIFO's reader has taken nothing for 300 ms` });
      expect(Date.now() - started).toBeLessThan(3000);
      socket.destroy();
    });
  });
});
