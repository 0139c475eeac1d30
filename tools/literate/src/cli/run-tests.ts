/**
 * `pnpm test`: every check the project has, in the order a failure is
 * cheapest to find, ending with one line of totals:
 *
 *   1. typecheck each workspace package (one check each)
 *   2. the book check: regions, examples, links (its own count)
 *   3. build the site and the PDF (one check)
 *   4. every Vitest suite: impl, literate, site (its own count)
 *
 * A failing step does not stop the later ones, so one run shows every
 * problem; the exit status is 1 if anything failed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRepoRoot } from '../paths.ts';

const root = findRepoRoot();
const PACKAGES = ['impl', 'tools/literate', 'snippets', 'site', 'bench'];

function run(title: string, command: string, args: string[]): Promise<{ code: number; output: string }> {
  process.stdout.write(`\n=== ${title}\n`);
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => {
      output += b;
      process.stdout.write(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b;
      process.stderr.write(b);
    });
    child.on('close', (code) => done({ code: code ?? 1, output }));
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];
const count = (ok: boolean, what: string) => {
  if (ok) passed++;
  else {
    failed++;
    failures.push(what);
  }
};

for (const pkg of PACKAGES) {
  const r = await run(`typecheck ${pkg}`, 'npx', ['tsc', '-p', pkg]);
  count(r.code === 0, `typecheck ${pkg}`);
}

const book = await run('book check', 'npx', ['tsx', 'tools/literate/src/cli/check-book.ts']);
const tally = /book check: (\d+) passed, (\d+) failed/.exec(book.output);
if (tally) {
  passed += Number(tally[1]);
  failed += Number(tally[2]);
  if (Number(tally[2]) > 0) failures.push('book check');
} else count(false, 'book check (it printed no totals)');

const build = await run('build the site and the PDF', 'npx', ['-y', 'pnpm@10', '--filter', '@saf/site', 'build']);
count(build.code === 0, 'build');

const report = join(mkdtempSync(join(tmpdir(), 'saf-vitest-')), 'report.json');
const vitest = await run('vitest', 'npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
try {
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    numPassedTests: number; numFailedTests: number; numTotalTests: number; numPendingTests?: number; numTodoTests?: number;
  };
  skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  passed += json.numPassedTests;
  failed += json.numFailedTests;
  if (json.numFailedTests > 0) failures.push('vitest');
  if (json.numTotalTests === 0) count(false, 'vitest (it ran no test)');
  else if (vitest.code !== 0 && json.numFailedTests === 0) count(false, 'vitest (a suite failed to load)');
} catch {
  count(false, 'vitest (no report was written)');
}

process.stdout.write('\n');
// Tests that need what this machine lacks (swaks, OpenSMTPD, Python, root...) skip themselves;
// say so, or a green line would claim more than was checked.
if (skipped > 0) process.stdout.write(`skipped: ${skipped} tests that need a program bash .ci/run installs, or root (see vitest's list above)\n`);
if (failures.length) process.stdout.write(`failed: ${failures.join(', ')}\n`);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
