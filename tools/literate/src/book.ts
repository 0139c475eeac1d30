import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * book/book.json is the one ordered list of the book: parts, and the
 * chapters in each. The site's sidebar, the PDF and the checker all read
 * it, so the order can never disagree between them.
 */
export interface BookToc {
  title: string;
  subtitle: string;
  /** Where the repository lives; file links and "Edit this page" point here. */
  repository: string;
  branch: string;
  parts: BookPart[];
}

export interface BookPart {
  title: string;
  /** Chapter slugs: `book/<slug>.mdx` is the chapter, `/<slug>/` its page. */
  chapters: string[];
}

export interface ChapterEntry {
  slug: string;
  part: string;
  /** Path relative to the repository root, e.g. `book/preface.mdx`. */
  file: string;
  /** 1-based position in reading order. */
  number: number;
}

export const BOOK_TOC_FILE = 'book/book.json';

export function loadBook(root: string): BookToc {
  const path = join(root, BOOK_TOC_FILE);
  const toc = JSON.parse(readFileSync(path, 'utf8')) as BookToc;
  if (!Array.isArray(toc.parts)) throw new Error(`${BOOK_TOC_FILE}: "parts" must be a list`);
  // A GitHub Actions run knows which repository it builds; forks get their own links.
  const fromCi = process.env.GITHUB_REPOSITORY;
  if (fromCi && process.env.GITHUB_SERVER_URL) toc.repository = `${process.env.GITHUB_SERVER_URL}/${fromCi}`;
  return toc;
}

/** The chapters in reading order, with the part each belongs to. */
export function chapters(toc: BookToc): ChapterEntry[] {
  const out: ChapterEntry[] = [];
  for (const part of toc.parts) {
    for (const slug of part.chapters) {
      out.push({ slug, part: part.title, file: `book/${slug}.mdx`, number: out.length + 1 });
    }
  }
  return out;
}

export function chapterExists(root: string, entry: ChapterEntry): boolean {
  return existsSync(join(root, entry.file));
}

/** A link to a file (and optionally a range of lines) in the repository's web view. */
export function repoFileUrl(toc: BookToc, file: string, lines?: { start: number; end: number }): string {
  const base = `${toc.repository.replace(/\/$/, '')}/blob/${toc.branch}/${file}`;
  return lines ? `${base}#L${lines.start}-L${lines.end}` : base;
}
