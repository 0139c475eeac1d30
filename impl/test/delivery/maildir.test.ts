/**
 * The maildir agent, read back by Python's mailbox.Maildir: what a mail
 * reader sees is the message with Unix line ends, byte for byte.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deliverMaildir, isSpamHeader, maildirUniqueName } from '../../src/delivery/maildir.ts';
import { content, readMaildirWithPython, tempDirPerTest, unix } from './helpers.ts';

const MESSAGE = 'Received: from mail.example.org by mx.example.net\r\n'
  + 'From: Alice <alice@example.org>\r\nSubject: caf\u00e9 au lait\r\n\r\n'
  + 'From the start of a line\r\n>From quoted already\r\n.\r\n8-bit: \u00e9\u00e8\u00ea \u4e2d\u6587\r\n';

describe('maildir delivery', () => {
  const freshDir = tempDirPerTest();
  const setup = () => join(freshDir(), 'home', 'Maildir');

  it('creates tmp/, new/ and cur/ (0700) and delivers into new/, byte-exact after CRLF -> LF', async () => {
    const dir = setup();
    const outcome = await deliverMaildir(dir, content(MESSAGE));
    expect(outcome.result).toBe('ok');
    for (const sub of ['tmp', 'new', 'cur']) expect(statSync(join(dir, sub)).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    const read = readMaildirWithPython(dir);
    expect(read.inbox).toHaveLength(1);
    expect(read.inbox[0]!.bytes.equals(unix(MESSAGE))).toBe(true);
    expect(outcome.result === 'ok' && outcome.detail).toBe(join(dir, 'new', read.inbox[0]!.name!));
  });

  it('checks a Maildir once per process, and again when the user removed tmp/, new/ or the whole Maildir', async () => {
    const dir = setup();
    expect((await deliverMaildir(dir, content(MESSAGE))).result).toBe('ok');
    rmSync(join(dir, 'tmp'), { recursive: true });
    expect((await deliverMaildir(dir, content(MESSAGE))).result).toBe('ok'); // the create in tmp/ fails, the check mends it
    rmSync(dir, { recursive: true });
    expect((await deliverMaildir(dir, content(MESSAGE))).result).toBe('ok');
    expect(readMaildirWithPython(dir).inbox).toHaveLength(1);
    // new/ gone: the rename fails, for now; the next delivery checks again and mends it.
    rmSync(join(dir, 'new'), { recursive: true });
    const failed = await deliverMaildir(dir, content(MESSAGE));
    expect(failed.result).toBe('tempfail');
    expect((await deliverMaildir(dir, content(MESSAGE))).result).toBe('ok');
    expect(readMaildirWithPython(dir).inbox).toHaveLength(1);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('keeps arbitrary 8-bit bytes and gives a last line without a line end one', async () => {
    const dir = setup();
    const bytes = Buffer.concat([Buffer.from('Subject: bytes\r\n\r\n'), Buffer.from([0xff, 0xfe, 0x80, 0x0d, 0x41]), Buffer.from('\r\nno final newline')]);
    expect((await deliverMaildir(dir, content(bytes, 3))).result).toBe('ok');
    const [msg] = readMaildirWithPython(dir).inbox;
    expect(msg!.bytes.equals(Buffer.concat([unix(bytes), Buffer.from('\n')]))).toBe(true);
  });

  it('junk: a message marked X-Spam: yes lands in .Junk, read by Python as the Junk folder', async () => {
    const dir = setup();
    const spam = 'From: spammer@example.com\r\nX-Spam-Flag: YES\r\nSubject: win\r\n\r\nbody\r\n';
    const ham = 'From: friend@example.com\r\nSubject: hi\r\n\r\nX-Spam: yes\r\n';
    expect((await deliverMaildir(dir, content(spam), { junk: true })).result).toBe('ok');
    expect((await deliverMaildir(dir, content(ham), { junk: true })).result).toBe('ok');
    const read = readMaildirWithPython(dir);
    expect(read.folders.Junk?.map((m) => m.bytes.toString())).toEqual([unix(spam).toString()]);
    // The marker in the body is not a header: the message stays in the inbox.
    expect(read.inbox.map((m) => m.bytes.toString())).toEqual([unix(ham).toString()]);
  });

  it('without junk, a spam-marked message stays in the inbox', async () => {
    const dir = setup();
    await deliverMaildir(dir, content('X-Spam: yes\r\n\r\nbody\r\n'));
    const read = readMaildirWithPython(dir);
    expect(read.inbox).toHaveLength(1);
    expect(read.folders).toEqual({});
  });

  it('a sub-address delivers into its folder only if the folder exists, and never leaves the maildir', async () => {
    const dir = setup();
    mkdirSync(join(dir, '.lists'), { recursive: true });
    await deliverMaildir(dir, content('Subject: a\r\n\r\nlists\r\n'), { folder: 'lists' });
    await deliverMaildir(dir, content('Subject: b\r\n\r\nnone\r\n'), { folder: 'nosuchfolder' });
    await deliverMaildir(dir, content('Subject: c\r\n\r\nescape\r\n'), { folder: '../../etc' });
    await deliverMaildir(dir, content('Subject: d\r\n\r\ndot\r\n'), { folder: '.' }); // `.` + `.` is the parent
    const read = readMaildirWithPython(dir);
    expect(read.folders.lists?.map((m) => m.bytes.toString())).toEqual(['Subject: a\n\nlists\n']);
    expect(read.inbox).toHaveLength(3);
    expect(existsSync(join(dir, '..', 'new'))).toBe(false);
  });

  it('refuses a relative path for good, and a path through a file for now', async () => {
    const dir = setup();
    expect(await deliverMaildir('Maildir', content('x\r\n'))).toMatchObject({ result: 'permfail' });
    mkdirSync(join(dir, '..'), { recursive: true });
    writeFileSync(join(dir, '..', 'file'), '');
    const outcome = await deliverMaildir(join(dir, '..', 'file', 'Maildir'), content('x\r\n'));
    expect(outcome).toMatchObject({ result: 'tempfail' });
    expect(outcome.result !== 'ok' && outcome.reason).toMatch(/^maildir .*file\/Maildir: /);
  });

  it('names files as the maildir spec says, with / and : in the host name escaped', () => {
    const a = maildirUniqueName('host/with:odd');
    const b = maildirUniqueName('host/with:odd');
    expect(a).toMatch(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]{16}\.host\\057with\\072odd$/);
    expect(a).not.toBe(b);
  });

  it('recognises the spam markers OpenSMTPD recognises, in any case', () => {
    expect(isSpamHeader('X-Spam: yes')).toBe(true);
    expect(isSpamHeader('x-spam-flag: YES')).toBe(true);
    expect(isSpamHeader('X-Spam: no')).toBe(false);
    expect(isSpamHeader('X-Spam-Status: Yes, score=9')).toBe(false);
  });
});
