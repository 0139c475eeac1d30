/**
 * The parent's part of `mbox` delivery (parent/mailbox.ts): the lock of
 * a user's system mailbox, and the mailbox itself when it is missing,
 * made in a directory the user cannot write to. As root, the directory
 * is Debian's /var/mail: root:mail, mode 2775.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/delivery/index.ts';
import { lockSystemMailbox, mailboxService } from '../../src/parent/mailbox.ts';

const asRoot = process.getuid?.() === 0;
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** An account: nobody as root, else whoever runs the test. */
const USER: UserRecord = asRoot
  ? { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }
  : { name: 'tester', uid: process.getuid!(), gid: process.getgid!(), home: '/tmp' };

/** A mail directory: as root, root:mail 2775; otherwise the caller's own. */
function mailDir(): string {
  const base = mkdtempSync(join(tmpdir(), 'saf-mailbox-'));
  made.push(base);
  const dir = join(base, 'mail');
  mkdirSync(dir);
  if (asRoot) {
    chownSync(dir, 0, Number(execFileSync('getent', ['group', 'mail'], { encoding: 'utf8' }).split(':')[2]));
    execFileSync('chmod', ['2775', dir]);
  }
  return dir;
}

describe('the system mailbox, locked by the parent', () => {
  it('a missing mailbox is created empty, mode 0600, owned by the user; the lock is there until released', async () => {
    const dir = mailDir();
    const lock = await lockSystemMailbox(USER, { dir });
    const box = lstatSync(join(dir, USER.name));
    expect({ file: box.isFile(), size: box.size, mode: (box.mode & 0o7777).toString(8), uid: box.uid, gid: box.gid })
      .toEqual({ file: true, size: 0, mode: '600', uid: USER.uid, gid: USER.gid });
    expect(lock.path).toBe(join(dir, `${USER.name}.lock`));
    expect(existsSync(lock.path)).toBe(true);
    await lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it('a mailbox that exists is left as it is', async () => {
    const dir = mailDir();
    writeFileSync(join(dir, USER.name), 'From a Thu Jan  1 00:00:00 2026\n\nold\n\n');
    chmodSync(join(dir, USER.name), 0o660);
    if (asRoot) chownSync(join(dir, USER.name), USER.uid, USER.gid);
    const lock = await lockSystemMailbox(USER, { dir });
    await lock.release();
    expect(readFileSync(join(dir, USER.name), 'utf8')).toContain('old');
    expect((lstatSync(join(dir, USER.name)).mode & 0o777).toString(8)).toBe('660');
  });

  it.each([
    ['a symbolic link to a file', (dir: string) => (writeFileSync(join(dir, '..', 'target'), 'x'), symlinkSync(join(dir, '..', 'target'), join(dir, USER.name))), 'is a symbolic link; refusing to follow it'],
    ['a dangling symbolic link', (dir: string) => symlinkSync(join(dir, '..', 'nowhere'), join(dir, USER.name)), 'is a symbolic link; refusing to follow it'],
    ['a FIFO', (dir: string) => execFileSync('mkfifo', [join(dir, USER.name)]), 'is not a regular file'],
    ['a directory', (dir: string) => mkdirSync(join(dir, USER.name)), 'is not a regular file'],
    ['a file with another hard link', (dir: string) => (writeFileSync(join(dir, '..', 'other'), ''), linkSync(join(dir, '..', 'other'), join(dir, USER.name))), 'has 2 hard links; refusing to append'],
  ])('%s at the mailbox is refused, nothing is created through it, and the lock is let go', async (_, plant, why) => {
    const dir = mailDir();
    plant(dir);
    await expect(lockSystemMailbox(USER, { dir })).rejects.toThrow(`${join(dir, USER.name)} ${why}`);
    expect(existsSync(join(dir, '..', 'nowhere'))).toBe(false);
    if (existsSync(join(dir, '..', 'target'))) expect(readFileSync(join(dir, '..', 'target'), 'utf8')).toBe('x');
    expect(existsSync(join(dir, `${USER.name}.lock`))).toBe(false);
  });

  it.runIf(asRoot)('a mailbox someone else made first, in a mail directory anyone can write to, is refused', async () => {
    // chmod 1777 /var/mail, as the dot lock's own error message suggests: another user makes
    // nobody's mailbox before nobody's first mail, world-writable, to read what is appended.
    const dir = mailDir();
    execFileSync('chmod', ['1777', dir]);
    writeFileSync(join(dir, USER.name), '');
    chmodSync(join(dir, USER.name), 0o666);
    chownSync(join(dir, USER.name), 1234, 1234);
    await expect(lockSystemMailbox(USER, { dir })).rejects.toThrow(`${join(dir, USER.name)} is owned by uid 1234, not by ${USER.name}`);
    expect(existsSync(join(dir, `${USER.name}.lock`))).toBe(false);
  });

  it('a user name that is not a file name is refused', async () => {
    const dir = mailDir();
    await expect(lockSystemMailbox({ ...USER, name: '../etc' }, { dir })).rejects.toThrow('cannot name a mailbox');
    await expect(lockSystemMailbox({ ...USER, name: '' }, { dir })).rejects.toThrow('cannot name a mailbox');
  });
});

/** The parent's handlers for one agent, called as its requests would call them. */
function agentOf(dir: string, retries: number) {
  const service = mailboxService(USER, (account) => account.name === USER.name || account.name === 'twin', { dir, lock: { retries, retryDelayMs: 5 } });
  return {
    lock: (path: string, user = USER) => service.handlers['parent.mbox.lock']({ type: 'parent.mbox.lock', user, path }, undefined),
    unlock: (lock: number) => service.handlers['parent.mbox.unlock']({ type: 'parent.mbox.unlock', lock }, undefined),
    exit: () => service.releaseAll(),
  };
}

describe("an agent's requests", () => {
  it('lock only the mailboxes of known accounts with its uid and gid, and what it holds is released when it exits', async () => {
    const dir = mailDir();
    const own = join(dir, USER.name);
    const agent = agentOf(dir, 1);
    await expect(agent.lock(join(dir, 'root'))).rejects.toThrow(`the agent for ${USER.name} may lock ${own} for ${USER.name}, not ${join(dir, 'root')}`);
    const root = { name: 'root', uid: 0, gid: 0, home: '/root' };
    await expect(agent.lock(join(dir, 'root'), root)).rejects.toThrow(`may not lock the mailbox of root (uid 0, gid 0)`);
    await expect(agent.lock(join(dir, 'stranger'), { ...USER, name: 'stranger' })).rejects.toThrow('may not lock the mailbox of stranger: no userbase of smtpd.conf has this account');
    const twin = await agent.lock(join(dir, 'twin'), { ...USER, name: 'twin' });
    expect(existsSync(join(dir, 'twin.lock'))).toBe(true);
    await agent.unlock(twin.lock);
    const { lock } = await agent.lock(own);
    expect(existsSync(`${own}.lock`)).toBe(true);
    await agent.unlock(lock);
    expect(existsSync(`${own}.lock`)).toBe(false);
    await agent.lock(own);
    await agent.exit();
    expect(existsSync(`${own}.lock`)).toBe(false);
  });

  it('hold or wait for 64 locks at most', async () => {
    const dir = mailDir();
    const own = join(dir, USER.name);
    const agent = agentOf(dir, 1000);
    // Each waits for the one before it to be released: one held, 63 waiting, the 65th refused at once.
    const first = await agent.lock(own);
    const waiting = Array.from({ length: 63 }, () => agent.lock(own));
    await expect(agent.lock(own)).rejects.toThrow('holds or waits for 64 locks already');
    await agent.unlock(first.lock);
    // Each lets go as soon as it has the lock, so that the next can take it.
    await Promise.all(waiting.map(async (w) => agent.unlock((await w).lock)));
    expect(existsSync(`${own}.lock`)).toBe(false);
  });
});
