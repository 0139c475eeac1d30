import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { BOOK_TOC_FILE, chapters, type BookToc } from './book.ts';
import { classifyLink, scanChapter, type ChapterRef, type ChapterScan } from './chapters.ts';
import { lineDiff } from './diff.ts';
import { jsonSpans, lineAt } from './json-spans.ts';
import { exampleDir, listExamples, loadExample, runExample, type Example, type ExampleRun } from './examples.ts';
import { LiterateError, type Problem } from './problems.ts';
import { scanRegions, type RegionScan } from './regions.ts';

/**
 * The book check: everything that keeps the chapters and the code in step.
 *
 *   a. book.json and book/*.mdx agree (no missing, unlisted or twice-listed chapter)
 *   b. every <Region> and <Example> a chapter uses exists
 *   c. every region marker under impl/ is well formed
 *   d. every region under impl/ is quoted by some chapter
 *   e. every example under snippets/ is shown by some chapter
 *   f. every example shown still prints what its output.txt says
 *   g. every link between chapters points at a chapter and heading that exist
 *
 * Every individual check passes or fails; each failure is one Problem that
 * names the place to fix, so `failed` always equals `problems.length`.
 */
export interface CheckOptions {
  /** Run the examples and compare their output (f). On unless false. */
  runExamples?: boolean;
  /** Called with one line per example run: `[2/5] chapter/name ... ok (1.2 s)`. */
  onProgress?: (message: string) => void;
}

export interface CheckResult {
  problems: Problem[];
  passed: number;
  failed: number;
}

/** A chapter slug as book.json may list it: also the page's URL segment. */
export const CHAPTER_SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const EXAMPLE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*\/[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;
/** The folder whose regions must all be quoted. */
export const IMPL_DIR = 'impl';

/** Repository-relative `.ts` files under `dir`, skipping node_modules and hidden folders. */
export function listSourceFiles(root: string, dir: string = IMPL_DIR): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = join(root, rel);
    for (const entry of readdirSync(abs, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith('.ts')) out.push(child);
    }
  };
  if (existsSync(join(root, dir)) && statSync(join(root, dir)).isDirectory()) walk(dir);
  return out;
}

/** The 1-based line of each chapter slug listed in book.json, in listing order. */
function slugLines(tocText: string): number[] {
  const parts = jsonSpans(tocText).fields?.get('parts')?.items ?? [];
  return parts.flatMap((part) => (part.fields?.get('chapters')?.items ?? []).map((item) => lineAt(tocText, item.start)));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

export async function checkBook(root: string, options: CheckOptions = {}): Promise<CheckResult> {
  const problems: Problem[] = [];
  let passed = 0;
  const pass = () => {
    passed++;
  };
  const fail = (p: Problem) => {
    problems.push(p);
  };
  const done = (): CheckResult => {
    problems.sort((x, y) => x.file.localeCompare(y.file) || x.line - y.line || (x.col ?? 0) - (y.col ?? 0));
    return { problems, passed, failed: problems.length };
  };

  // a. The table of contents and the chapter files.
  const tocPath = join(root, BOOK_TOC_FILE);
  if (!existsSync(tocPath)) {
    fail({ file: BOOK_TOC_FILE, line: 1, message: `${BOOK_TOC_FILE} does not exist: it lists the book's parts and chapters` });
    return done();
  }
  const tocText = readFileSync(tocPath, 'utf8');
  let toc: BookToc;
  try {
    toc = JSON.parse(tocText) as BookToc;
    if (!Array.isArray(toc.parts)) throw new Error('"parts" must be a list');
    for (const part of toc.parts) {
      if (typeof part?.title !== 'string' || !Array.isArray(part.chapters) || part.chapters.some((c) => typeof c !== 'string')) {
        throw new Error('each part needs a "title" (a string) and "chapters" (a list of chapter slugs)');
      }
    }
  } catch (e) {
    fail({ file: BOOK_TOC_FILE, line: 1, message: `cannot read ${BOOK_TOC_FILE}: ${(e as Error).message}` });
    return done();
  }

  const listedLines = slugLines(tocText);
  const listed = new Map<string, string>(); // slug -> chapter file, for chapters that exist
  const slugs = new Set<string>();
  const firstLine = new Map<string, number>();
  chapters(toc).forEach((entry, i) => {
    const line = listedLines[i] ?? 1;
    if (!CHAPTER_SLUG.test(entry.slug)) {
      fail({ file: BOOK_TOC_FILE, line, message: `chapter slug "${entry.slug}" must be lowercase letters and digits joined by "-"` });
      return;
    }
    const earlier = firstLine.get(entry.slug);
    if (earlier !== undefined) {
      fail({ file: BOOK_TOC_FILE, line, message: `chapter "${entry.slug}" is listed twice (first at line ${earlier}); list each chapter once` });
      return;
    }
    firstLine.set(entry.slug, line);
    slugs.add(entry.slug);
    if (!existsSync(join(root, entry.file))) {
      fail({ file: BOOK_TOC_FILE, line, message: `chapter "${entry.slug}" is listed, but ${entry.file} does not exist: create it or remove "${entry.slug}" from the list` });
      return;
    }
    listed.set(entry.slug, entry.file);
    pass();
  });
  const bookDir = join(root, 'book');
  if (existsSync(bookDir)) {
    for (const name of readdirSync(bookDir).sort()) {
      if (!name.endsWith('.mdx') || name === 'index.mdx' || name.startsWith('_')) continue;
      const slug = name.slice(0, -'.mdx'.length);
      if (!slugs.has(slug)) {
        fail({
          file: `book/${name}`,
          line: 1,
          message: `chapter book/${name} is not listed in ${BOOK_TOC_FILE}: add "${slug}" to a part's "chapters", or rename it to _${name} while it is a draft`,
        });
      }
    }
  }

  // Read every chapter (and the home page, which may embed examples too).
  const scans = new Map<string, ChapterScan>(); // chapter file -> scan
  for (const file of [...listed.values(), 'book/index.mdx']) {
    if (!existsSync(join(root, file))) continue;
    scans.set(file, scanChapter(readFileSync(join(root, file), 'utf8')));
  }

  // c. Every region marker under impl/.
  const regionFiles = new Map<string, RegionScan | undefined>(); // repo path -> scan, undefined if unreadable
  const scanFile = (file: string): RegionScan | undefined => {
    if (!regionFiles.has(file)) {
      const abs = join(root, file);
      const scan = existsSync(abs) && statSync(abs).isFile() ? scanRegions(readFileSync(abs, 'utf8'), file) : undefined;
      regionFiles.set(file, scan);
      // Markers outside impl/ are checked when a chapter quotes the file.
      if (scan && !file.startsWith(`${IMPL_DIR}/`)) scan.problems.forEach(fail);
    }
    return regionFiles.get(file);
  };
  for (const file of listSourceFiles(root)) scanFile(file)!.problems.forEach(fail);

  // b. References, and g. links, chapter by chapter.
  const usedRegions = new Set<string>(); // `${file}#${name}`
  const exampleNames = new Set(listExamples(root));
  const shown = new Map<string, { chapter: string; ref: ChapterRef; example: Example }>();
  const shownNames = new Set<string>();
  const unloadable = new Set<string>();
  for (const [chapter, scan] of scans) {
    const at = (ref: { line: number; col: number }) => ({ file: chapter, line: ref.line, col: ref.col });
    for (const p of scan.problems) fail({ file: chapter, ...p });
    for (const ref of scan.refs) {
      if (ref.kind === 'region') {
        const file = posix.normalize(ref.file);
        if (file.startsWith('/') || file.startsWith('../') || file === '..') {
          fail({ ...at(ref), message: `<Region file="${ref.file}"> must name a file inside the repository, relative to its root (e.g. impl/src/...)` });
          continue;
        }
        const scanned = scanFile(file);
        if (!scanned) {
          fail({ ...at(ref), message: `<Region file="${ref.file}" name="${ref.name}">: ${file} does not exist` });
          continue;
        }
        if (!scanned.regions.some((r) => r.name === ref.name)) {
          const there = scanned.regions.map((r) => r.name);
          const hint = there.length ? `regions there: ${there.join(', ')}` : 'it has no regions';
          fail({ ...at(ref), message: `region "${ref.name}" is not in ${file} (${hint}); mark it with "// #region ${ref.name}" ... "// #endregion ${ref.name}"` });
          continue;
        }
        usedRegions.add(`${file}#${ref.name}`);
        pass();
      } else if (ref.kind === 'example') {
        if (!EXAMPLE_NAME.test(ref.name)) {
          fail({ ...at(ref), message: `<Example name="${ref.name}">: an example's name is "<chapter>/<example>", its folder under snippets/` });
          continue;
        }
        shownNames.add(ref.name);
        if (!exampleNames.has(ref.name)) {
          fail({ ...at(ref), message: `example "${ref.name}" does not exist (no ${exampleDir(ref.name)}/example.json)` });
          continue;
        }
        let example: Example;
        try {
          example = loadExample(root, ref.name);
        } catch (e) {
          if (!(e instanceof LiterateError)) throw e;
          if (unloadable.has(ref.name)) continue;
          unloadable.add(ref.name);
          fail({ ...e.problem, message: `${e.problem.message} (the example is shown at ${chapter}:${ref.line})` });
          continue;
        }
        if (!shown.has(ref.name)) shown.set(ref.name, { chapter, ref, example });
        pass();
      } else {
        // The home page links with ./slug/, not ../slug/; its links are the site's business.
        if (chapter === 'book/index.mdx') continue;
        const link = classifyLink(ref.href);
        if (link === 'external') continue;
        if (link === 'malformed') {
          fail({ ...at(ref), message: `link "${ref.href}" is not a link the book can check: use ../slug/ or ../slug/#anchor for a chapter, #anchor within this one, or a full https:// URL` });
          continue;
        }
        if (link.slug === '') {
          pass(); // The home page.
          continue;
        }
        const target = link.slug === undefined ? chapter : listed.get(link.slug);
        if (link.slug !== undefined && !slugs.has(link.slug)) {
          fail({ ...at(ref), message: `link "${ref.href}" points to chapter "${link.slug}", which ${BOOK_TOC_FILE} does not list` });
          continue;
        }
        const anchors = target === undefined ? undefined : scans.get(target)?.anchors;
        if (link.anchor !== undefined && anchors !== undefined) {
          let anchor = link.anchor;
          try {
            anchor = decodeURIComponent(anchor);
          } catch {
            /* keep it as written */
          }
          if (!anchors.has(anchor)) {
            const there = [...anchors].filter((a) => a !== '_top');
            const list = there.length > 8 ? `${there.slice(0, 8).join(', ')}, ...` : there.join(', ');
            fail({
              ...at(ref),
              message: `link "${ref.href}" points to #${anchor}, which is no heading in ${target} (${there.length ? `its anchors: ${list}` : 'it has no headings'})`,
            });
            continue;
          }
        }
        pass();
      }
    }
  }

  // d. Every region under impl/ is quoted.
  for (const [file, scan] of regionFiles) {
    if (!scan || !file.startsWith(`${IMPL_DIR}/`)) continue;
    for (const region of scan.regions) {
      if (usedRegions.has(`${file}#${region.name}`)) pass();
      else {
        fail({ file, line: region.markerLine, message: `region ${region.name} is quoted by no chapter: quote it in a chapter or remove the markers` });
      }
    }
  }

  // e. Every example is shown.
  for (const name of exampleNames) {
    if (shownNames.has(name)) pass();
    else {
      fail({
        file: `${exampleDir(name)}/example.json`,
        line: 1,
        message: `example ${name} is shown by no chapter: embed it with <Example name="${name}" /> or remove ${exampleDir(name)}/`,
      });
    }
  }

  // f. Run the examples, one at a time: they may start servers on fixed ports.
  if (options.runExamples !== false) {
    const all = [...shown.values()];
    for (const [i, { chapter, ref, example }] of all.entries()) {
      const run = await runExample(root, example);
      const trouble = exampleTrouble(example, run);
      const verdict = trouble ? (run.timedOut ? 'timed out' : 'FAILED') : 'ok';
      options.onProgress?.(`[${i + 1}/${all.length}] ${example.name} ... ${verdict} (${seconds(run.ms)})`);
      if (trouble) fail({ file: chapter, line: ref.line, col: ref.col, message: trouble });
      else pass();
    }
  }

  return done();
}

/**
 * What is wrong with one run of an example, as a message for the chapter
 * that shows it; undefined if it printed what output.txt says and ended as
 * expected.
 */
export function exampleTrouble(example: Example, run: ExampleRun): string | undefined {
  const name = example.name;
  const outputFile = `${example.dir}/output.txt`;
  const update = `run "pnpm example ${name} --update" if the new output is right, then review the diff`;
  if (run.timedOut) {
    const limit = example.manifest.timeoutSeconds ?? 60;
    return `example ${name} did not finish within ${limit} s and was stopped (raise "timeoutSeconds" in example.json if it is only slow)`;
  }
  // The first line says what is wrong; the lines under it are indented.
  const lines: string[] = [];
  const expectedCode = example.manifest.exitCode ?? 0;
  if (run.exitCode === null) lines.push(`example ${name} was killed by a signal`);
  else if (run.exitCode !== expectedCode) {
    const hint = expectedCode === 0 ? `; if the failure is the point, set "exitCode": ${run.exitCode} in example.json` : '';
    lines.push(`example ${name} exited with status ${run.exitCode}, but example.json expects ${expectedCode}${hint}`);
  }
  if (example.expected === undefined) {
    lines.push(`example ${name} has no ${outputFile} yet: run "pnpm example ${name} --update" to record it, then review it`);
  } else if (example.expected !== run.output) {
    lines.push(`example ${name} no longer prints what ${outputFile} says:`);
    lines.push(indent(lineDiff(example.expected, run.output, { labels: [`${outputFile} (what the book shows)`, 'what it prints now'] })));
    lines.push(update);
  } else if (lines.length) {
    // Right output, wrong status: show the output so the cause is at hand.
    const tail = run.output.trimEnd().split('\n').slice(-5);
    lines.push(`its output ends with:\n${indent(tail.join('\n'))}`);
    lines.push(`run "pnpm example ${name}" to see it run`);
  }
  if (!lines.length) return undefined;
  const [first, ...rest] = lines;
  return [first, ...rest.map((l) => l.replace(/^/gm, '  '))].join('\n');
}
