/**
 * Shared by the site's tests. They run after `pnpm build` and look at what
 * it made: site/dist (served on 127.0.0.1 by scripts/dist-server.ts) and
 * site/dist/book.pdf.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chapters, findRepoRoot, loadBook, type BookToc, type ChapterEntry } from '@saf/literate';
import { distDir, siteDir } from '../scripts/dist-server.ts';

export const root = findRepoRoot(siteDir);
export const toc: BookToc = loadBook(root);
export const artifactsDir = join(root, 'test-artifacts');

export interface Chapter extends ChapterEntry {
  title: string;
}

/** Chapters in book order, each with the title from its front matter. */
export const bookChapters: Chapter[] = chapters(toc).map((c) => ({ ...c, title: frontMatterTitle(join(root, c.file)) }));

function frontMatterTitle(file: string): string {
  const text = readFileSync(file, 'utf8');
  const fm = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text)?.[1] ?? '';
  const raw = /^title:\s*(.+?)\s*$/m.exec(fm)?.[1];
  if (!raw) throw new Error(`${file}: no title in the front matter`);
  const quoted = /^(['"])(.*)\1$/.exec(raw);
  return quoted ? quoted[2]!.replace(/''/g, "'") : raw;
}

/** Fails with the one thing to do when the site has not been built. */
export function requireDist(...files: string[]): void {
  for (const f of ['index.html', ...files]) {
    if (!existsSync(join(distDir, f))) {
      throw new Error(`site/dist/${f} is missing: run \`pnpm build\` first (the site's tests check the built site)`);
    }
  }
}

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
}

export function hasCommand(command: string): boolean {
  try {
    execFileSync(command, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export { distDir };
