/**
 * The files that list targets: a user's ~/.forward, which the root
 * parent reads for lookup, and the file of an `:include:/path` alias
 * target. Both are read as targetLines(), and each line's targets come
 * with an origin that names the file and the line, for the log.
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import type { UserRecord } from '../delivery/types.ts';
import { splitTargets } from '../table/alias-targets.ts';
import { hasControlCharacter, notATarget, parseAliasTarget, type AliasTarget } from '../table/index.ts';
import { EXPANSION_PERM, EXPANSION_TEMP, Failure, MAX_INCLUDED_TARGETS, messageOf } from './failure.ts';
import { eachTargetLine } from './forward-file.ts';
import type { Origin } from './tree.ts';
import type { ForwardFile } from './types.ts';

/** One line of such a file: its targets, and the origin they share. */
export interface ListedLine {
  origin: Origin;
  targets: AliasTarget[];
}

/** The user's ~/.forward as the parent read it; a parent that cannot answer is a temporary failure too. */
export async function readForwardOf(read: (user: UserRecord) => Promise<ForwardFile>, user: UserRecord): Promise<ForwardFile> {
  try {
    return await read(user);
  } catch (err) {
    return { status: 'error', path: `${user.home}/.forward`, reason: messageOf(err) };
  }
}

/** The lines of a ~/.forward: their targets may be files and commands if the action says `forward-file allow-exec`. */
export function forwardLines(path: string, content: string, allowExec: boolean): Iterable<ListedLine> {
  return listedLines(content, (line) => ({ kind: 'forward', where: `${path} line ${line}`, allowExec, option: 'forward-file allow-exec' }));
}

/** An `:include:` file as read: its text, its owner and its mode bits. */
export interface IncludedFile {
  content: string;
  uid: number;
  mode: number;
}

/** Larger included files are refused: a list of a few thousand addresses fits many times over. */
export const MAX_INCLUDE_SIZE = 1024 * 1024;

/** What one expansion may still read from `:include:` files: see MAX_INCLUDED_TARGETS. */
export interface IncludeBudget {
  bytes: number;
  targets: number;
}

/** The budget of a new expansion. */
export function includeBudget(): IncludeBudget {
  return { bytes: MAX_INCLUDE_SIZE, targets: MAX_INCLUDED_TARGETS };
}

// #region include-file
/**
 * Reads an `:include:` file without letting it hang or swell the lookup
 * process: opened without blocking (a FIFO would wait for a writer for
 * ever, holding one of libuv's four threads), and refused unless it is a
 * regular file (`/dev/zero` never ends) of at most MAX_INCLUDE_SIZE.
 */
export async function readIncludeFile(path: string): Promise<IncludedFile> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await file.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_INCLUDE_SIZE) throw new Error(`larger than ${MAX_INCLUDE_SIZE} bytes`);
    return { content: await file.readFile('utf8'), uid: st.uid, mode: st.mode };
  } finally {
    await file.close();
  }
}

/**
 * `:include:/path`: the file's lines are more targets of the same entry,
 * with the same right to name files and commands, but only if nobody but
 * root can change the file: a list file its owner may edit is a fine
 * list of addresses, and a way to run commands as the alias's account if
 * its commands counted. So a file not owned by root, or writable by its
 * group or by others, may still list addresses; a file or command in it
 * is refused, and the log says why. A file that cannot be read is a
 * temporary failure (OpenSMTPD logs it and goes on without its members,
 * which silently drops them).
 */
export async function readIncluded(
  read: (path: string) => Promise<IncludedFile>, path: string, origin: Origin, budget: IncludeBudget,
): Promise<Iterable<ListedLine>> {
  let file: IncludedFile;
  try {
    file = await read(path);
  } catch (err) {
    throw new Failure(EXPANSION_TEMP, `${origin.where}: cannot read ${path}: ${messageOf(err)}`);
  }
  budget.bytes -= file.content.length;
  if (budget.bytes < 0) throw new Failure(EXPANSION_PERM, `${origin.where}: ${path}: more than ${MAX_INCLUDE_SIZE} bytes of :include: files in one expansion`);
  const unsafe = includeProblem(file);
  const lines = listedLines(file.content, (line) => ({
    ...origin,
    where: `${path} line ${line}, included from ${origin.where}`,
    ...(unsafe !== undefined && { execRefused: `${path} ${unsafe}, so it may list addresses only` }),
  }));
  return counted(lines, budget);
}

/** The lines, each line's targets taken from the budget; past it, the expansion fails. */
function* counted(lines: Iterable<ListedLine>, budget: IncludeBudget): Generator<ListedLine> {
  for (const line of lines) {
    budget.targets -= line.targets.length;
    if (budget.targets < 0) {
      throw new Failure(EXPANSION_PERM, `${line.origin.where}: more than ${MAX_INCLUDED_TARGETS} targets read from :include: files in one expansion`);
    }
    yield line;
  }
}

function includeProblem(file: Pick<Stats, 'uid' | 'mode'>): string | undefined {
  if (file.uid !== 0) return `is owned by uid ${file.uid}, not root`;
  if ((file.mode & 0o020) !== 0) return 'is group-writable';
  if ((file.mode & 0o002) !== 0) return 'is world-writable';
  return undefined;
}
// #endregion include-file

/**
 * Each line as the walk comes to it. A line is parsed only then, after
 * the lines above it were inserted, so that which failure a file gives
 * (too many nodes, a line that is not targets) follows the file's order.
 */
function* listedLines(content: string, originAt: (line: number) => Origin): Generator<ListedLine> {
  for (const { line, text } of eachTargetLine(content)) {
    const origin = originAt(line);
    yield { origin, targets: lineTargets(text, origin.where) };
  }
}

/**
 * The targets of one line of a ~/.forward or an included file; a line
 * that is not a list of targets is a temporary failure naming it, as a
 * parse error in a .forward is in forwards_get().
 */
function lineTargets(text: string, where: string): AliasTarget[] {
  const items = splitTargets(text);
  if (items === undefined) throw new Failure(EXPANSION_TEMP, `${where}: unbalanced quote or trailing backslash`);
  return items.map((item) => {
    const target = parseAliasTarget(item);
    if (!target) {
      const why = hasControlCharacter(item) ? `: it ${notATarget(item)}` : '';
      throw new Failure(EXPANSION_TEMP, `${where}: cannot read ${JSON.stringify(item)} as a target${why}`);
    }
    return target;
  });
}
