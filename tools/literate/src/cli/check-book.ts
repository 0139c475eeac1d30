/**
 * `pnpm check:book [--root DIR] [--no-run]`: checks that the book and the
 * code are in step (see ../check.ts). Progress and problems go to stderr, one
 * problem as `FILE:LINE:COL: message`; the last line on stdout is always
 * `book check: N passed, N failed`. Exit status 1 if anything failed.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkBook } from '../check.ts';
import { findRepoRoot } from '../paths.ts';
import { formatProblem } from '../problems.ts';

const USAGE = `usage: pnpm check:book [--root DIR] [--no-run]

  --root DIR   the repository to check (default: the one this script is in)
  --no-run     do not run the examples; check everything else
`;

let args;
try {
  args = parseArgs({
    options: { root: { type: 'string' }, 'no-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  }).values;
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

try {
  const root = args.root ? resolve(args.root) : findRepoRoot();
  const result = await checkBook(root, {
    runExamples: !args['no-run'],
    onProgress: (message) => process.stderr.write(`${message}\n`),
  });
  if (result.problems.length) {
    process.stderr.write('\n');
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write('\n');
  }
  process.stdout.write(`book check: ${result.passed} passed, ${result.failed} failed\n`);
  process.exit(result.failed > 0 ? 1 : 0);
} catch (e) {
  process.stderr.write(`book check stopped: ${(e as Error).stack ?? String(e)}\n`);
  process.stdout.write('book check: 0 passed, 1 failed\n');
  process.exit(1);
}
