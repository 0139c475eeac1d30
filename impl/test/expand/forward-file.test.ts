/**
 * The parent's ~/.forward reader: what it accepts, what it refuses, and
 * why. The files are owned by a uid that exists nowhere else (chown needs
 * root: these tests run as root, as the parent does).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/delivery/types.ts';
import { MAX_FORWARD_SIZE, readForwardFile, targetLines } from '../../src/expand/index.ts';
import { isRoot } from './helpers.ts';

const UID = 52001;
const OTHER = 52002;

let dir: string;
let home: string;
let user: UserRecord;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'saf-forward-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'bob');
  mkdirSync(home, { mode: 0o755 });
  chmodSync(home, 0o755);
  if (isRoot) chownSync(home, UID, UID);
  user = { name: 'bob', uid: UID, gid: UID, home };
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Writes bob's .forward with `mode`, owned by `uid`. */
function forward(text: string, mode = 0o644, uid = UID): string {
  const path = join(home, '.forward');
  writeFileSync(path, text);
  chmodSync(path, mode);
  chownSync(path, uid, uid);
  return path;
}

const refused = (reason: string) => ({ status: 'refused', path: join(home, '.forward'), reason });

describe.skipIf(!isRoot)('readForwardFile', () => {
  it('reads a file owned by the user, mode 0644', async () => {
    const path = forward('alice\n');
    expect(await readForwardFile(user)).toEqual({ status: 'ok', path, content: 'alice\n' });
  });

  it('refuses a file owned by root: a hard link to a root-only file would be read as root', async () => {
    forward('alice\n', 0o644, 0);
    expect(await readForwardFile(user)).toEqual(refused('is owned by uid 0, not by bob (uid ' + UID + ')'));
  });

  it('reads an empty file as empty', async () => {
    const path = forward('');
    expect(await readForwardFile(user)).toEqual({ status: 'ok', path, content: '' });
  });

  it('follows a home directory that is a symbolic link, checking where it points', async () => {
    const path = forward('alice\n');
    const link = join(dir, 'bob-link');
    symlinkSync(home, link);
    expect(await readForwardFile({ ...user, home: link })).toEqual({ status: 'ok', path: join(link, '.forward'), content: 'alice\n' });
    chmodSync(home, 0o757);
    expect(await readForwardFile({ ...user, home: link })).toMatchObject({ status: 'refused', reason: `home directory ${link} (${home}) is world-writable` });
    expect(path).toBe(join(home, '.forward'));
  });

  it('no .forward, or no home at all, is missing', async () => {
    expect(await readForwardFile(user)).toEqual({ status: 'missing' });
    expect(await readForwardFile({ ...user, home: join(dir, 'nowhere') })).toEqual({ status: 'missing' });
  });

  it.each([
    ['group-writable', 0o664, UID, 'is group-writable'],
    ['world-writable', 0o646, UID, 'is world-writable'],
    ['owned by another user', 0o644, OTHER, `is owned by uid ${OTHER}, not by bob (uid ${UID})`],
  ])('refuses a file that is %s', async (_what, mode, uid, reason) => {
    forward('alice\n', mode, uid);
    expect(await readForwardFile(user)).toEqual(refused(reason));
  });

  it('refuses a symbolic link, even to a good file', async () => {
    const target = join(home, 'real-forward');
    writeFileSync(target, 'alice\n');
    chownSync(target, UID, UID);
    symlinkSync(target, join(home, '.forward'));
    expect(await readForwardFile(user)).toEqual(refused('is a symbolic link'));
  });

  it('refuses a directory and a FIFO (without blocking on the FIFO)', async () => {
    mkdirSync(join(home, '.forward'));
    chownSync(join(home, '.forward'), UID, UID);
    expect(await readForwardFile(user)).toEqual(refused('is not a regular file'));
    rmSync(join(home, '.forward'), { recursive: true });
    execFileSync('mkfifo', [join(home, '.forward')]);
    chownSync(join(home, '.forward'), UID, UID);
    expect(await readForwardFile(user)).toEqual(refused('is not a regular file'));
  });

  it(`refuses a file of ${MAX_FORWARD_SIZE} bytes or more`, async () => {
    forward('x'.repeat(MAX_FORWARD_SIZE - 1));
    expect((await readForwardFile(user)).status).toBe('ok');
    forward('x'.repeat(MAX_FORWARD_SIZE));
    expect(await readForwardFile(user)).toEqual(refused(`is larger than ${MAX_FORWARD_SIZE - 1} bytes`));
  });

  it.each([
    ['world-writable', 0o757, UID, `home directory ${'$HOME'} is world-writable`],
    ['group-writable', 0o775, UID, `home directory ${'$HOME'} is group-writable`],
    ['owned by another user', 0o755, OTHER, `home directory ${'$HOME'} is owned by uid ${OTHER}, not by bob or root`],
    ['sticky', 0o1755, UID, `home directory ${'$HOME'} is sticky`],
  ])('refuses a good file in a home directory that is %s', async (_what, mode, uid, reason) => {
    forward('alice\n');
    chownSync(home, uid, uid);
    chmodSync(home, mode);
    expect(await readForwardFile(user)).toEqual(refused(reason.replace('$HOME', home)));
  });

  it('accepts a home directory owned by root', async () => {
    const path = forward('alice\n');
    chownSync(home, 0, 0);
    expect(await readForwardFile(user)).toEqual({ status: 'ok', path, content: 'alice\n' });
  });
});

describe('targetLines', () => {
  it('skips comments and blank lines, joins continued lines, keeps line numbers', () => {
    expect(targetLines('# comment\n\nalice, \\\n  bob\n\\bob # me\n\\#hash@example.org\r\n')).toEqual([
      { line: 3, text: 'alice,   bob' },
      { line: 5, text: '\\bob' },
      { line: 6, text: '#hash@example.org' },
    ]);
  });
});
