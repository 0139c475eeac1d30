/**
 * `pnpm new-chapter "Title" [--part "Part title"]`: starts a chapter that
 * passes the book check: book/<slug>.mdx with front matter and a skeleton,
 * a first example in snippets/<slug>/hello/ with its output recorded, and
 * the slug added to the part (the last part unless --part names one) in
 * book/book.json.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findRepoRoot } from '../paths.ts';
import { newChapter } from '../scaffold.ts';

const USAGE = `usage: pnpm new-chapter "Title" [--part "Part title"] [--root DIR]

  --part TITLE   the part of book/book.json to add the chapter to (default: the last part)
  --root DIR     the repository (default: the one this script is in)
`;

let parsed;
try {
  parsed = parseArgs({
    options: { part: { type: 'string' }, root: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const { values: args, positionals } = parsed;
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (positionals.length !== 1) {
  process.stderr.write(`${positionals.length ? 'quote the title: it is one argument' : 'give the chapter a title'}\n\n${USAGE}`);
  process.exit(2);
}

const root = args.root ? resolve(args.root) : findRepoRoot();
try {
  const made = await newChapter(root, positionals[0]!, args.part === undefined ? {} : { part: args.part });
  const [chapter] = made.created.filter((f) => f.endsWith('.mdx'));
  process.stdout.write(`created ${[chapter, ...made.created.filter((f) => f !== chapter && f !== 'book/book.json')].join('\n        ')}
added "${made.slug}" to the end of part "${made.part}" in book/book.json

next:
  1. write the chapter in ${chapter}: its front matter's description, the opening, the sections
  2. quote the code it explains: mark it with "// #region NAME" ... "// #endregion NAME"
     in impl/ and write <Region file="impl/..." name="NAME" /> in the chapter
  3. make snippets/${made.slug}/hello/ show what the chapter is about (or rename it, and the
     <Example> with it), then record its output: pnpm example ${made.slug}/hello --update
  4. check it all: pnpm check:book
`);
} catch (e) {
  process.stderr.write(`new-chapter: ${(e as Error).message}\n`);
  process.exit(1);
}
