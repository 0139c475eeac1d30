import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  chapters,
  findRepoRoot,
  loadBook,
  scanChapter,
  type BookToc,
  type ChapterEntry,
  type ChapterRef,
  type Problem,
} from '@saf/literate';

/**
 * The repository root, found from the folder the build runs in (site/),
 * not from where Vite happens to put the bundled module.
 */
export const root: string = findRepoRoot(process.cwd());

let cached: BookToc | undefined;
export function book(): BookToc {
  return (cached ??= loadBook(root));
}

export function bookChapters(): ChapterEntry[] {
  return chapters(book());
}

/** `/base/` + path, for links built in components (BASE_URL may or may not end in /). */
export function withBase(path: string): string {
  const base = import.meta.env.BASE_URL.replace(/\/+$/, '');
  return `${base}/${path.replace(/^\/+/, '')}`;
}

/**
 * Where a chapter embeds a <Region> or <Example>, so that a build error
 * names the chapter's line (book/<slug>.mdx:12:1) rather than only the
 * quoted file. Undefined when the page is not a chapter (the print page).
 */
export function referenceSite(
  url: URL,
  match: (ref: ChapterRef) => boolean,
): Problem | undefined {
  const base = import.meta.env.BASE_URL.replace(/\/+$/, '');
  const slug = url.pathname.slice(base.length).replace(/^\/+|\/+$/g, '');
  const file = `book/${slug || 'index'}.mdx`;
  if (!/^[a-z0-9-]+$/.test(slug || 'index') || !existsSync(join(root, file))) return undefined;
  const ref = scanChapter(readFileSync(join(root, file), 'utf8')).refs.find(match);
  return ref ? { file, line: ref.line, col: ref.col, message: '' } : { file, line: 1, message: '' };
}
