/**
 * deliverLocal() as the dispatcher calls it: the safety net, the methods
 * that deliver nothing, the delivery headers, loop detection, and the
 * choice of agent by delivery kind and method.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { LocalAction, LocalOptions } from '../../src/config/index.ts';
import { deliverLocal, deliveryHeaders, mayRunAs, mayRunCommand } from '../../src/delivery/deliver.ts';
import type { UserRecord } from '../../src/delivery/types.ts';
import type { ForwardFile } from '../../src/expand/types.ts';
import type { LocalDelivery } from '../../src/queue/types.ts';
import { content, envelope, readMaildirWithPython, readMboxWithPython, request, tempDirPerTest, unix } from './helpers.ts';

const MESSAGE = 'Subject: hello\r\n\r\nbody\r\n';

function action(options: LocalOptions): LocalAction {
  return { kind: 'action', name: 'local', method: { kind: 'mda', command: '/usr/bin/true' }, options, loc: { file: 'smtpd.conf', line: 1, col: 1 } };
}
const command = (source?: LocalDelivery['source']): LocalDelivery => ({ user: 'bob', kind: 'command', target: '/usr/bin/vacation bob', ...(source && { source }) });
const alias = { kind: 'alias' as const, where: 'table aliases, key bob' };
const virtual = { kind: 'virtual' as const, where: 'table virtuals, key bob@example.net' };
const forward = { kind: 'forward' as const, where: '/home/bob/.forward line 1' };
const allExec: LocalOptions = { alias: { table: 'aliases', allowExec: true }, virtual: { table: 'virtuals', allowExec: true }, forwardFile: { allowExec: true } };

describe('the safety net: mayRunCommand', () => {
  const rows: [what: string, options: LocalOptions, delivery: LocalDelivery | undefined, reason: RegExp | undefined][] = [
    ["the action's own mda (a mailbox delivery)", {}, { user: 'bob', kind: 'mailbox' }, undefined],
    ['no delivery at all', {}, undefined, undefined],
    ['a file from an alias without allow-exec (it could be ~/.profile)', { alias: { table: 'aliases', allowExec: false } }, { user: 'bob', kind: 'file', target: '/tmp/x', source: alias }, /^"\/tmp\/x" for bob from table aliases, key bob: alias <aliases> of action "local" is not marked allow-exec$/],
    ['a file from an allow-exec alias', { alias: { table: 'aliases', allowExec: true } }, { user: 'bob', kind: 'file', target: '/tmp/x', source: alias }, undefined],
    ['a file of unknown origin, everything allowing exec', allExec, { user: 'bob', kind: 'file', target: '/tmp/x' }, /does not say where it came from/],
    ['a command from an allow-exec alias', { alias: { table: 'aliases', allowExec: true } }, command(alias), undefined],
    ['a command from an alias without allow-exec', { alias: { table: 'aliases', allowExec: false } }, command(alias), /from table aliases, key bob: alias <aliases> of action "local" is not marked allow-exec$/],
    ['a command from an alias the action does not have', { virtual: { table: 'virtuals', allowExec: true } }, command(alias), /action "local" has no alias table$/],
    ['a command from an allow-exec virtual table', { virtual: { table: 'virtuals', allowExec: true } }, command(virtual), undefined],
    ['a command from a virtual table, only the alias allowing exec', { alias: { table: 'aliases', allowExec: true } }, command(virtual), /action "local" has no virtual table$/],
    ['a command from a virtual table without allow-exec', { virtual: { table: 'virtuals', allowExec: false } }, command(virtual), /virtual <virtuals> of action "local" is not marked allow-exec$/],
    ['a command from ~/.forward with forward-file allow-exec', { forwardFile: { allowExec: true } }, command(forward), undefined],
    ['a command from ~/.forward with forward-file only', { forwardFile: { allowExec: false } }, command(forward), /forward-file of action "local" is not marked allow-exec$/],
    ['a command from ~/.forward, the action reading none', { alias: { table: 'aliases', allowExec: true } }, command(forward), /does not read ~\/\.forward files$/],
    ['a command of unknown origin, everything allowing exec', allExec, command(), /^"\/usr\/bin\/vacation bob" for bob does not say where it came from/],
    ['a command from a source kind nobody knows', allExec, command({ kind: 'include' as 'alias', where: 'somewhere' }), /unknown source$/],
  ];
  it.each(rows)('%s', (_what, options, delivery, reason) => {
    const policy = mayRunCommand(action(options), delivery);
    if (reason === undefined) expect(policy).toEqual({ allowed: true });
    else {
      expect(policy.allowed).toBe(false);
      expect(!policy.allowed && policy.reason).toMatch(reason);
    }
  });
});

describe('the safety net: mayRunAs, the account against the source', () => {
  const bob: UserRecord = { name: 'bob', uid: 52001, gid: 52001, home: '/home/bob' };
  /** A reader that answers bob's ~/.forward with `content`, without touching the disk. */
  const forwardOf = (content: string) => async (): Promise<ForwardFile> => ({ status: 'ok', path: '/home/bob/.forward', content });
  const asUser = (kind: 'command' | 'file', target: string, user: string, source: LocalDelivery['source']): LocalDelivery => ({ user, kind, target, ...(source && { source }) });
  const rows: [what: string, options: LocalOptions, delivery: LocalDelivery, read: () => Promise<ForwardFile>, reason: RegExp | undefined][] = [
    ['a command listed in ~/.forward', allExec, asUser('command', '/usr/bin/vacation bob', 'bob', forward), forwardOf('bob@example.org, "|/usr/bin/vacation bob"\n'), undefined],
    ['a file listed in ~/.forward', allExec, asUser('file', '/home/bob/archive', 'bob', forward), forwardOf('# mine\n/home/bob/archive\n'), undefined],
    ['a command ~/.forward does not list', allExec, asUser('command', 'touch /tmp/pwned', 'bob', forward), forwardOf('|/usr/bin/vacation bob\n'),
      /^"touch \/tmp\/pwned" for bob from \/home\/bob\/\.forward line 1: \/home\/bob\/\.forward does not list it now$/],
    ['a command ~/.forward lists as a file (same text, other kind)', allExec, asUser('command', '/home/bob/archive', 'bob', forward), forwardOf('/home/bob/archive\n'), /does not list it now$/],
    ['a command ~/.forward lists only in a comment', allExec, asUser('command', '/usr/bin/vacation bob', 'bob', forward), forwardOf('# |/usr/bin/vacation bob\nbob\n'), /does not list it now$/],
    ['a command from ~/.forward when there is none now', allExec, asUser('command', '/usr/bin/vacation bob', 'bob', forward), async () => ({ status: 'missing' }), /bob has no ~\/\.forward now$/],
    ['a command from a ~/.forward that is refused', allExec, asUser('command', '/usr/bin/vacation bob', 'bob', forward),
      async () => ({ status: 'refused', path: '/home/bob/.forward', reason: 'is world-writable' }), /\/home\/bob\/\.forward is refused: is world-writable$/],
    ['a command from a ~/.forward that cannot be read as targets', allExec, asUser('command', '/usr/bin/vacation bob', 'bob', forward), forwardOf('"|/usr/bin/vacation bob\n'), /unbalanced quote/],
    ['an alias command as the daemon account', allExec, asUser('command', '/usr/bin/true', '_smtpd', alias), forwardOf(''), undefined],
    ['an alias command as another account', allExec, asUser('command', '/usr/bin/true', 'bob', alias), forwardOf('|/usr/bin/true\n'),
      /^"\/usr\/bin\/true" for bob from table aliases, key bob: alias <aliases> of action "local" runs its commands as _smtpd, not as bob$/],
    ["an alias file as the action's user", { ...allExec, user: 'mailer' }, asUser('file', '/var/log/mail.txt', 'mailer', alias), forwardOf(''), undefined],
    ["an alias file as the daemon account when the action has a user", { ...allExec, user: 'mailer' }, asUser('file', '/var/log/mail.txt', '_smtpd', alias), forwardOf(''), /alias <aliases> of action "local" runs its files as mailer, not as _smtpd$/],
    ['a virtual command as another account', allExec, asUser('command', '/usr/bin/true', 'root2', virtual), forwardOf(''), /virtual <virtuals> of action "local" runs its commands as _smtpd, not as root2$/],
    ['a mailbox delivery, not in question', allExec, { user: 'bob', kind: 'mailbox', source: forward }, async () => ({ status: 'missing' }), undefined],
  ];
  it.each(rows)('%s', async (_what, options, delivery, read, reason) => {
    const policy = await mayRunAs(action(options), delivery, bob, { readForward: read });
    if (reason === undefined) expect(policy).toEqual({ allowed: true });
    else {
      expect(policy.allowed).toBe(false);
      expect(!policy.allowed && policy.reason).toMatch(reason);
    }
  });

  const freshDir = tempDirPerTest();
  it("reads the user's own ~/.forward from disk, with the parent's checks", async () => {
    const home = freshDir();
    chmodSync(home, 0o755);
    const me: UserRecord = { name: 'me', uid: process.getuid!(), gid: process.getgid!(), home };
    const delivery = asUser('command', '/usr/bin/vacation me', 'me', { kind: 'forward', where: `${home}/.forward line 1` });
    writeFileSync(join(home, '.forward'), '|/usr/bin/vacation me\n', { mode: 0o644 });
    expect(await mayRunAs(action(allExec), delivery, me)).toEqual({ allowed: true });
    chmodSync(join(home, '.forward'), 0o602);
    expect(await mayRunAs(action(allExec), delivery, me)).toMatchObject({ allowed: false, reason: expect.stringMatching(/\.forward is refused: is world-writable$/) });
  });
});

describe('deliverLocal', () => {
  const freshDir = tempDirPerTest();
  let dir = '';
  const setup = () => (dir = freshDir());

  it('puts Return-Path and Delivered-To on top, as mda.c does; Return-Path: <> for the null sender', () => {
    expect(deliveryHeaders(envelope())).toBe('Return-Path: <alice@example.org>\r\nDelivered-To: bob+news@example.net\r\n');
    expect(deliveryHeaders(envelope({ sender: null }))).toBe('Return-Path: <>\r\nDelivered-To: bob+news@example.net\r\n');
  });

  it('mbox: /var/mail/USER (here a temporary mail directory), read back by Python', async () => {
    setup();
    const outcome = await deliverLocal(request({ kind: 'mbox' }, dir, { envelope: envelope({ sender: null, delivery: { user: 'bob', kind: 'mailbox' } }) }), content(MESSAGE), { mailDir: dir });
    expect(outcome).toEqual({ result: 'ok', detail: join(dir, 'bob') });
    const [msg] = readMboxWithPython(join(dir, 'bob'));
    expect(msg!.from).toMatch(/^MAILER-DAEMON /);
    expect(msg!.bytes.toString()).toBe(`Return-Path: <>\nDelivered-To: bob+news@example.net\n${unix(MESSAGE).toString()}`);
  });

  it('maildir: a path with ~ and %{} variables, junk and the sub-address folder', async () => {
    setup();
    mkdirSync(join(dir, 'Mail', 'bob', '.news'), { recursive: true });
    const method = { kind: 'maildir' as const, path: '~/Mail/%{dest.user:lowercase}', junk: true };
    const req = request(method, dir, { delivery: { user: 'bob', kind: 'mailbox', subaddress: 'news' } });
    expect((await deliverLocal(req, content(MESSAGE))).result).toBe('ok');
    expect((await deliverLocal(req, content(`X-Spam: yes\r\n${MESSAGE}`))).result).toBe('ok');
    const read = readMaildirWithPython(join(dir, 'Mail', 'bob'));
    expect(read.inbox).toEqual([]);
    expect(read.folders.news?.map((m) => m.bytes.toString())).toEqual([`Return-Path: <alice@example.org>\nDelivered-To: bob+news@example.net\n${unix(MESSAGE).toString()}`]);
    expect(read.folders.Junk).toHaveLength(1);
  });

  it('maildir without a path: ~/Maildir', async () => {
    setup();
    expect((await deliverLocal(request({ kind: 'maildir', junk: false }, dir), content(MESSAGE))).result).toBe('ok');
    expect(readMaildirWithPython(join(dir, 'Maildir')).inbox).toHaveLength(1);
  });

  it('a message that already carries our Delivered-To is a loop: permfail, nothing delivered', async () => {
    setup();
    const looped = `Received: from somewhere\r\nDelivered-To: BOB+news@example.net\r\n${MESSAGE}`;
    const outcome = await deliverLocal(request({ kind: 'maildir', junk: false }, dir), content(looped));
    expect(outcome).toEqual({ result: 'permfail', reason: 'mail loop: the message was already delivered to BOB+news@example.net (Delivered-To)' });
    expect(existsSync(join(dir, 'Maildir'))).toBe(false);
    // In the body it is only text.
    const body = `Subject: x\r\n\r\nDelivered-To: bob+news@example.net\r\n`;
    expect((await deliverLocal(request({ kind: 'maildir', junk: false }, dir), content(body))).result).toBe('ok');
  });

  it('forward-only and expand-only deliver nothing to a mailbox', async () => {
    setup();
    for (const kind of ['forward-only', 'expand-only'] as const) {
      const outcome = await deliverLocal(request({ kind }, dir), content(MESSAGE));
      expect(outcome.result).toBe('permfail');
      expect(outcome.result !== 'ok' && outcome.reason).toMatch(new RegExp(`^action "local" is ${kind}: `));
    }
    // expand-only still lets an alias's file through; forward-only does not.
    const file = { user: 'bob', kind: 'file' as const, target: join(dir, 'archive'), source: alias };
    const actionOptions = { alias: { table: 'aliases', allowExec: true } };
    expect((await deliverLocal(request({ kind: 'expand-only' }, dir, { delivery: file, actionOptions }), content(MESSAGE))).result).toBe('ok');
    expect((await deliverLocal(request({ kind: 'forward-only' }, dir, { delivery: file, actionOptions }), content(MESSAGE))).result).toBe('permfail');
  });

  it('root gets mail only through mbox, as in OpenSMTPD', async () => {
    setup();
    const root = { name: 'root', uid: 0, gid: 0, home: dir };
    const outcome = await deliverLocal(request({ kind: 'maildir', junk: false }, dir, { user: root }), content(MESSAGE));
    expect(outcome).toMatchObject({ result: 'permfail', reason: expect.stringMatching(/^not allowed to deliver to root \(uid 0\) with maildir/) });
    expect((await deliverLocal(request({ kind: 'mbox' }, dir, { user: root }), content(MESSAGE), { mailDir: dir })).result).toBe('ok');
    expect((await deliverLocal(request({ kind: 'maildir', junk: false }, dir, { user: root }), content(MESSAGE), { allowRoot: true })).result).toBe('ok');
  });

  it('a bad template waits for the administrator (tempfail); a value that does not fit it bounces (permfail)', async () => {
    setup();
    const typo = await deliverLocal(request({ kind: 'maildir', path: `${dir}/%{recipient}`, junk: false }, dir), content(MESSAGE));
    expect(typo).toMatchObject({ result: 'tempfail', reason: expect.stringMatching(/^unknown format variable %\{recipient\}/) });
    const short = await deliverLocal(request({ kind: 'maildir', path: `${dir}/%{dest.user[5:]}`, junk: false }, dir), content(MESSAGE));
    expect(short).toMatchObject({ result: 'permfail', reason: expect.stringMatching(/past the end of "bob"/) });
  });

  it('never throws: a message that cannot be read is a tempfail, and the stream is destroyed', async () => {
    setup();
    const broken = new Readable({ read() { this.destroy(new Error('spool file vanished')); } });
    const outcome = await deliverLocal(request({ kind: 'maildir', junk: false }, dir), broken);
    expect(outcome).toEqual({ result: 'tempfail', reason: 'error reading the message: spool file vanished' });
    const unread = content(MESSAGE);
    await deliverLocal(request({ kind: 'forward-only' }, dir), unread);
    expect(unread.destroyed).toBe(true);
  });

  it('the safety net runs before any command: an unsourced command is refused with a tempfail', async () => {
    setup();
    const req = request({ kind: 'mbox' }, dir, { delivery: { user: 'bob', kind: 'command', target: `touch ${dir}/ran` }, actionOptions: allExec });
    const outcome = await deliverLocal(req, content(MESSAGE));
    expect(outcome).toMatchObject({ result: 'tempfail', reason: expect.stringMatching(/^command refused: /) });
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    // Without the action's options, nothing from an alias runs either.
    const bare = request({ kind: 'mbox' }, dir, { delivery: { user: 'bob', kind: 'command', target: `touch ${dir}/ran`, source: alias } });
    expect((await deliverLocal(bare, content(MESSAGE))).result).toBe('tempfail');
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });
});
