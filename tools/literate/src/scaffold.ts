import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { BOOK_TOC_FILE, type BookToc } from './book.ts';
import { exampleDir, loadExample, runExample } from './examples.ts';
import { jsonSpans } from './json-spans.ts';

/**
 * `pnpm new-chapter`: a new chapter that passes the book check from the
 * start: the MDX file, a first runnable example with its recorded output,
 * and the chapter's place in book.json.
 */

/** "The SMTP Dialogue, Part 2!" -> "the-smtp-dialogue-part-2" */
export function slugify(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * book.json's text with `slug` added at the end of a part's chapters (the
 * part titled `partTitle`, or the last part), edited in place so the rest of
 * the file keeps its formatting. Throws if the part does not exist.
 */
export function addChapterToToc(text: string, slug: string, partTitle?: string): { text: string; part: string } {
  const toc = JSON.parse(text) as BookToc;
  const index = partTitle === undefined ? toc.parts.length - 1 : toc.parts.findIndex((p) => p.title === partTitle);
  const part = toc.parts[index];
  if (!part) {
    const titles = toc.parts.map((p) => `"${p.title}"`).join(', ');
    throw new Error(partTitle === undefined ? `${BOOK_TOC_FILE} has no parts` : `${BOOK_TOC_FILE} has no part titled "${partTitle}" (parts: ${titles})`);
  }
  part.chapters.push(slug);

  const array = jsonSpans(text).fields?.get('parts')?.items?.[index]?.fields?.get('chapters');
  const quoted = JSON.stringify(slug);
  let edited: string | undefined;
  if (array?.items) {
    const last = array.items[array.items.length - 1];
    if (!last) edited = `${text.slice(0, array.start)}[${quoted}]${text.slice(array.end)}`;
    else if (!text.slice(array.start, array.end).includes('\n')) {
      edited = `${text.slice(0, last.end)}, ${quoted}${text.slice(last.end)}`;
    } else {
      const lineStart = text.lastIndexOf('\n', last.start) + 1;
      const indent = /^[ \t]*/.exec(text.slice(lineStart, last.start))![0];
      edited = `${text.slice(0, last.end)},\n${indent}${quoted}${text.slice(last.end)}`;
    }
  }
  // Should the in-place edit ever go wrong, rewrite the whole file instead.
  if (edited === undefined || !isDeepStrictEqual(JSON.parse(edited), toc)) edited = `${JSON.stringify(toc, null, 2)}\n`;
  return { text: edited, part: part.title };
}

/** A single-quoted JavaScript string literal. */
function quote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function chapterSkeleton(title: string, slug: string): string {
  return `---
title: ${JSON.stringify(title)}
description: ${JSON.stringify('One sentence on what the reader understands after this chapter.')}
---
import { Region, Example } from '@book/components';

Start with the question this chapter answers, and why a mail transfer agent
has to answer it. Say what the reader will be able to do at the end.

## The idea

Explain one idea at a time, then show the code that does it. Mark the code
in impl/ with a region and quote it here:

{/*
  In impl/src/<file>.ts:

      // #region <name>
      ...the lines to show...
      // #endregion <name>

  In this chapter:

      <Region file="impl/src/<file>.ts" name="<name>" />
*/}

## Try it

Run this chapter's example yourself with \`npx -y pnpm@10 example ${slug}/hello\`:

<Example name="${slug}/hello" />
`;
}

export interface NewChapter {
  slug: string;
  part: string;
  /** Repository-relative files written, in the order they were written. */
  created: string[];
}

/** Creates the chapter; throws (having written nothing) if it cannot. */
export async function newChapter(root: string, title: string, options: { part?: string } = {}): Promise<NewChapter> {
  title = title.trim();
  if (!title || /[\r\n]/.test(title)) throw new Error('the title must be one non-empty line');
  const slug = slugify(title);
  if (!slug) throw new Error(`"${title}" has no letters or digits to make a file name from`);
  const chapterFile = `book/${slug}.mdx`;
  const exampleName = `${slug}/hello`;
  const dir = exampleDir(exampleName);

  const tocText = readFileSync(join(root, BOOK_TOC_FILE), 'utf8');
  const toc = JSON.parse(tocText) as BookToc;
  if (existsSync(join(root, chapterFile))) throw new Error(`${chapterFile} already exists; pick another title`);
  if (toc.parts.some((p) => p.chapters.includes(slug))) throw new Error(`${BOOK_TOC_FILE} already lists a chapter "${slug}"`);
  if (existsSync(join(root, dir))) throw new Error(`${dir} already exists`);
  const updated = addChapterToToc(tocText, slug, options.part);

  const created: string[] = [];
  const write = (file: string, text: string) => {
    writeFileSync(join(root, file), text);
    created.push(file);
  };
  const exampleRoot = join(root, dir);
  const chapterSnippets = join(root, exampleDir(slug));
  const madeSnippets = !existsSync(chapterSnippets);
  try {
    mkdirSync(exampleRoot, { recursive: true });
    write(
      `${dir}/example.json`,
      `{
  "description": ${JSON.stringify(`A first example for "${title}".`)},
  "command": "tsx hello.ts",
  "show": ["hello.ts"]
}
`,
    );
    write(
      `${dir}/hello.ts`,
      `// The example the chapter "${title}" ends with. Replace it with one that
// shows what the chapter is about, then record its output with
//   pnpm example ${exampleName} --update
console.log(${quote(`Hello from "${title}".`)});
`,
    );
    // Record the output the way the book check will compare it.
    const run = await runExample(root, loadExample(root, exampleName));
    if (run.exitCode !== 0 || run.timedOut) throw new Error(`the scaffolded example failed (exit status ${run.exitCode}):\n${run.raw}`);
    write(`${dir}/output.txt`, run.output);
    write(chapterFile, chapterSkeleton(title, slug));
  } catch (e) {
    // Leave nothing half made.
    rmSync(madeSnippets ? chapterSnippets : exampleRoot, { recursive: true, force: true });
    if (created.includes(chapterFile)) rmSync(join(root, chapterFile), { force: true });
    throw e;
  }
  writeFileSync(join(root, BOOK_TOC_FILE), updated.text);
  created.push(BOOK_TOC_FILE);
  return { slug, part: updated.part, created };
}
