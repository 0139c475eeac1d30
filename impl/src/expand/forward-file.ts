/**
 * ~/.forward: opening it safely, which only the root parent can do, and
 * reading its lines, which lookup does with what the parent sent back.
 *
 * The parent opens the file as OpenSMTPD's parent_forward_open() does
 * (smtpd.c) and checks it as secure_file() does (util.c): a file that
 * another user could have written must not decide where someone's mail
 * goes, nor, with `forward-file allow-exec`, which commands run as them.
 */
import { constants, type Stats } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { UserRecord } from '../delivery/types.ts';
import { logicalLines } from '../table/line-reader.ts';
import type { ForwardFile } from './types.ts';

/**
 * A ~/.forward this large is refused (a temporary failure): OpenSMTPD's
 * MAX_FORWARD_SIZE (forward.c). A forward file names a handful of
 * addresses; anything bigger is a mistake or an attack on the lookup
 * process, which holds the whole expansion in memory.
 */
export const MAX_FORWARD_SIZE = 4 * 1024;

/** What a refusal reports: the file is there but is not to be trusted. */
const refused = (path: string, reason: string): ForwardFile => ({ status: 'refused', path, reason });
/** Something that may go away by itself: too many open files, an I/O error. */
const failed = (path: string, reason: string): ForwardFile => ({ status: 'error', path, reason });

// #region read-forward
/**
 * Opens and reads `<home>/.forward` for `user`. Never throws: every
 * outcome is one of ForwardFile's, so that the parent can always answer.
 *
 *   missing   no home directory, or no .forward in it: deliver to the mailbox;
 *   ok        the file passed the checks below; `content` is its text;
 *   refused   it exists but is a symbolic link, not a regular file, owned by
 *             someone else, writable by others, too large, or the home
 *             directory is writable by others or sticky;
 *   error     it could not be read for a reason that may pass.
 */
export async function readForwardFile(user: UserRecord): Promise<ForwardFile> {
  const home = user.home;
  const path = join(home, '.forward');

  // The home directory is looked at first, as parent_forward_open() does:
  // no home means no .forward, the normal case for system accounts.
  let homeStat: Stats;
  try {
    homeStat = await stat(home);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { status: 'missing' };
    return failed(path, `cannot stat home directory ${home}: ${messageOf(err)}`);
  }
  // A sticky home is a shared directory (/tmp as a home): OpenSMTPD refuses it too.
  if ((homeStat.mode & 0o1000) !== 0) return refused(path, `home directory ${home} is sticky`);

  // O_NOFOLLOW: a .forward that is a symbolic link is refused rather than
  // followed, so that it cannot point the root parent at another user's
  // file. O_NONBLOCK: a FIFO named .forward must not hang the parent; it is
  // then refused below as not a regular file.
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return { status: 'missing' };
    if (code === 'ELOOP') return refused(path, 'is a symbolic link');
    if (code === 'ENOTDIR') return refused(path, `home directory ${home} is not a directory`);
    return failed(path, `cannot open: ${messageOf(err)}`);
  }

  try {
    // The checks are made on the descriptor that was opened, not on the
    // name, so that the file cannot be swapped between check and read.
    const st = await handle.stat();
    const problem = fileProblem(st, user) ?? (await homeProblem(home, user));
    if (problem) return refused(path, problem);
    if (st.size === 0) return { status: 'ok', path, content: '' };
    // Read one byte more than the limit, in case the file grew since fstat.
    const buffer = Buffer.alloc(MAX_FORWARD_SIZE);
    const { bytesRead } = await handle.read(buffer, 0, MAX_FORWARD_SIZE, 0);
    if (bytesRead >= MAX_FORWARD_SIZE) return refused(path, `is larger than ${MAX_FORWARD_SIZE - 1} bytes`);
    return { status: 'ok', path, content: buffer.subarray(0, bytesRead).toString('utf8') };
  } catch (err) {
    return failed(path, `cannot read: ${messageOf(err)}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}
// #endregion read-forward

// #region forward-checks
/**
 * What is wrong with the opened file, if anything. secure_file() wants a
 * regular file owned by the user and not writable by group or others
 * (it is only read, so readable by others is fine).
 *
 * Owned by the user, not by root: where users may hard-link files they
 * cannot read (OpenBSD and FreeBSD by default, Linux with
 * fs.protected_hardlinks=0), a user could give a root-only file a second
 * name, ~/.forward, and the parent, reading as root, would expand its
 * lines and log them. (OpenSMTPD accepted root-owned files until 2015,
 * and has refused them since.) The size is checked here rather than
 * after opening (forwards_get() in forward.c), so that the parent never
 * reads more than the limit.
 */
function fileProblem(st: Stats, user: UserRecord): string | undefined {
  if (!st.isFile()) return 'is not a regular file';
  if (st.uid !== user.uid) return `is owned by uid ${st.uid}, not by ${user.name} (uid ${user.uid})`;
  if ((st.mode & 0o020) !== 0) return 'is group-writable';
  if ((st.mode & 0o002) !== 0) return 'is world-writable';
  if (st.size >= MAX_FORWARD_SIZE) return `is larger than ${MAX_FORWARD_SIZE - 1} bytes`;
  return undefined;
}

/**
 * What is wrong with the directory the file is in. secure_file() walks up
 * from the file's real path to the user's (real) home directory, checking
 * each directory: owned by root or the user, not writable by group or
 * others. The .forward sits directly in the home, so that walk is the home
 * directory alone, resolved through symbolic links: checked here. A
 * directory others can write to would let them replace the .forward.
 */
async function homeProblem(home: string, user: UserRecord): Promise<string | undefined> {
  const real = await realpath(home);
  const st = await stat(real);
  const shown = real === home ? home : `${home} (${real})`;
  if (st.uid !== user.uid && st.uid !== 0) return `home directory ${shown} is owned by uid ${st.uid}, not by ${user.name} or root`;
  if ((st.mode & 0o020) !== 0) return `home directory ${shown} is group-writable`;
  if ((st.mode & 0o002) !== 0) return `home directory ${shown} is world-writable`;
  return undefined;
}
// #endregion forward-checks

/** One logical line of a ~/.forward or an included file, and the line it starts on (from 1). */
export interface TargetLine {
  line: number;
  text: string;
}

/**
 * The lines of a ~/.forward that hold targets, read as fparseln(3) reads
 * it for forwards_get() and as table files are read (line-reader.ts): `#`
 * starts a comment, `\#` is a literal `#`, a backslash at the end of a
 * line joins the next one. Other backslashes are left for the target
 * splitter, which drops them (`\bob` is `bob`). Blank and comment-only
 * lines are skipped.
 *
 * Included files (`:include:/path` in an alias) are read the same way.
 * OpenSMTPD passes them other delimiters, which make `#` a line
 * continuation instead of a comment, probably by mistake; here a comment
 * is a comment in both.
 */
export function targetLines(content: string): TargetLine[] {
  return [...eachTargetLine(content)];
}

/** targetLines() one at a time, so that a reader who stops early has not read the rest. */
export function* eachTargetLine(content: string): Generator<TargetLine> {
  for (const { line, text } of logicalLines(content)) if (text !== '') yield { line, text };
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
