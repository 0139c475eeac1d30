/**
 * The files that list targets: a user's ~/.forward, which the root
 * parent reads for lookup, and the file of an `:include:/path` alias
 * target. Both are read as targetLines(), and each line's targets come
 * with an origin that names the file and the line, for the log.
 */
import type { UserRecord } from '../delivery/types.ts';
import { splitTargets } from '../table/alias-targets.ts';
import { parseAliasTarget, type AliasTarget } from '../table/index.ts';
import { EXPANSION_TEMP, Failure, messageOf } from './failure.ts';
import { targetLines } from './forward-file.ts';
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

/**
 * `:include:/path`: the file's lines are more targets of the same entry,
 * with the same right to name files and commands. A file that cannot be
 * read is a temporary failure (OpenSMTPD logs it and goes on without its
 * members, which silently drops them).
 */
export async function readIncluded(read: (path: string) => Promise<string>, path: string, origin: Origin): Promise<Iterable<ListedLine>> {
  let content: string;
  try {
    content = await read(path);
  } catch (err) {
    throw new Failure(EXPANSION_TEMP, `${origin.where}: cannot read ${path}: ${messageOf(err)}`);
  }
  return listedLines(content, (line) => ({ ...origin, where: `${path} line ${line}, included from ${origin.where}` }));
}

/**
 * Each line as the walk comes to it. A line is parsed only then, after
 * the lines above it were inserted, so that which failure a file gives
 * (too many nodes, a line that is not targets) follows the file's order.
 */
function* listedLines(content: string, originAt: (line: number) => Origin): Generator<ListedLine> {
  for (const { line, text } of targetLines(content)) {
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
    if (!target) throw new Failure(EXPANSION_TEMP, `${where}: cannot read ${JSON.stringify(item)} as a target`);
    return target;
  });
}
