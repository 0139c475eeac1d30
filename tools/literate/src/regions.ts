import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LiterateError, type Problem } from './problems.ts';

/**
 * A region is a named run of lines in a source file, marked
 *
 *     // #region NAME
 *     ...
 *     // #endregion NAME
 *
 * (the same markers VS Code folds on). A chapter quotes a region by file and
 * name; the book shows the lines between the markers, dedented, with the
 * markers of any nested region left out.
 */
export interface Region {
  name: string;
  /** Repository-relative path of the file that holds it. */
  file: string;
  /** 1-based line of the `#region` marker, for error messages. */
  markerLine: number;
  /** First and last line of the quoted code, 1-based and inclusive. */
  startLine: number;
  endLine: number;
  /** The code as the book shows it. */
  code: string;
}

const MARKER = /^\s*\/\/\s*#(region|endregion)\b[ \t]*(\S*)/;
const NAME = /^[A-Za-z0-9_-]+$/;

export interface RegionScan {
  regions: Region[];
  problems: Problem[];
}

/** Finds every region in a file's text, and every malformed marker. */
export function scanRegions(text: string, file: string): RegionScan {
  const lines = text.split('\n');
  const regions: Region[] = [];
  const problems: Problem[] = [];
  const open: { name: string; line: number }[] = [];
  const seen = new Map<string, number>();

  lines.forEach((lineText, i) => {
    const m = MARKER.exec(lineText);
    if (!m) return;
    const [, kind, name = ''] = m;
    const line = i + 1;
    if (kind === 'region') {
      if (!NAME.test(name)) {
        problems.push({ file, line, message: `region marker needs a name made of letters, digits, - or _ (got "${name}")` });
        return;
      }
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        problems.push({ file, line, message: `region "${name}" is already defined at line ${earlier}; names must be unique in a file` });
      }
      seen.set(name, line);
      open.push({ name, line });
      return;
    }
    const top = open.pop();
    if (!top) {
      problems.push({ file, line, message: `#endregion ${name} has no matching #region` });
      return;
    }
    if (name !== '' && name !== top.name) {
      problems.push({ file, line, message: `#endregion ${name} closes region "${top.name}" opened at line ${top.line}` });
    }
    const body = lines.slice(top.line, line - 1);
    regions.push({
      name: top.name,
      file,
      markerLine: top.line,
      startLine: top.line + 1,
      endLine: line - 1,
      code: dedent(body.filter((l) => !MARKER.test(l))).join('\n'),
    });
  });
  for (const o of open) {
    problems.push({ file, line: o.line, message: `region "${o.name}" is never closed (add "// #endregion ${o.name}")` });
  }
  regions.sort((a, b) => a.markerLine - b.markerLine);
  return { regions, problems };
}

/** Removes the indentation every non-blank line shares, and blank lines at both ends. */
export function dedent(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]!.trim() === '') start++;
  while (end > start && lines[end - 1]!.trim() === '') end--;
  const body = lines.slice(start, end);
  const indents = body.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return body.map((l) => l.slice(cut).trimEnd());
}

/**
 * The region a chapter asks for, or an error that names the chapter's
 * reference, so a missing region stops the build with a useful message.
 */
export function readRegion(root: string, file: string, name: string, from?: Problem): Region {
  let text: string;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch {
    throw new LiterateError({ ...(from ?? { file, line: 1 }), message: `cannot read ${file} (quoted as region "${name}")` });
  }
  const found = scanRegions(text, file).regions.find((r) => r.name === name);
  if (!found) {
    throw new LiterateError({ ...(from ?? { file, line: 1 }), message: `region "${name}" not found in ${file}` });
  }
  return found;
}
