/**
 * A problem found while reading the book or the code it quotes. Every
 * problem names a place (a file relative to the repository root, a 1-based
 * line, and a column when we know it) so that an editor can jump there.
 */
export interface Problem {
  file: string;
  line: number;
  col?: number;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.col === undefined ? `${p.file}:${p.line}` : `${p.file}:${p.line}:${p.col}`;
  return `${where}: ${p.message}`;
}

/** Thrown when the book cannot be built at all (a missing region, a missing example). */
export class LiterateError extends Error {
  constructor(readonly problem: Problem) {
    super(formatProblem(problem));
    this.name = 'LiterateError';
  }
}
