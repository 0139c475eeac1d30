import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root is the folder that holds pnpm-workspace.yaml. Every
 * path the book talks about (`impl/src/...`, `snippets/...`) is relative
 * to it, so the book reads the same on every machine.
 */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${from}: run this inside the repository`);
    dir = parent;
  }
}

/** `a/b/c.ts` with forward slashes, whatever the platform. */
export function repoPath(root: string, absolute: string): string {
  return relative(root, absolute).split(sep).join('/');
}
