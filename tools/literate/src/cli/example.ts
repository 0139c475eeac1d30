/**
 * `pnpm example`: lists the examples, with what each shows.
 * `pnpm example <chapter>/<name>`: runs one example as the book check does,
 *   streaming what it prints, then says whether its normalised output
 *   matches output.txt (with a diff if not). Exit status 1 if not.
 * `pnpm example <chapter>/<name> --update`: the same, then writes the
 *   normalised output to output.txt; review the change with `git diff`.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exampleTrouble } from '../check.ts';
import { lineDiff } from '../diff.ts';
import { exampleDir, listExamples, loadExample, runExample, type Example } from '../examples.ts';
import { findRepoRoot } from '../paths.ts';
import { LiterateError } from '../problems.ts';

const USAGE = `usage: pnpm example                         list the examples
       pnpm example <chapter>/<name>          run one, compare with its output.txt
       pnpm example <chapter>/<name> --update  run one, record its output.txt

  --root DIR   the repository (default: the one this script is in)
`;

let parsed;
try {
  parsed = parseArgs({
    options: { update: { type: 'boolean' }, root: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const { values: args, positionals } = parsed;
if (args.help || positionals.length > 1) {
  (args.help ? process.stdout : process.stderr).write(USAGE);
  process.exit(args.help ? 0 : 2);
}
const root = args.root ? resolve(args.root) : findRepoRoot();
const names = listExamples(root);

if (positionals.length === 0) {
  if (!names.length) process.stdout.write('no examples yet: an example is a folder snippets/<chapter>/<name>/ with an example.json\n');
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const name of names) {
    let about: string;
    try {
      const example = loadExample(root, name);
      about = example.manifest.description + (example.expected === undefined ? '  (no output.txt yet)' : '');
    } catch (e) {
      about = `(broken: ${e instanceof LiterateError ? e.problem.message : (e as Error).message})`;
    }
    process.stdout.write(`${name.padEnd(width)}  ${about}\n`);
  }
  process.exit(0);
}

// Accept "snippets/ch/name/" (tab completion) as well as "ch/name".
const name = positionals[0]!.replace(/^(\.\/)?snippets\//, '').replace(/\/+$/, '');
if (!names.includes(name)) {
  process.stderr.write(`no example "${name}" (no ${exampleDir(name)}/example.json). Examples: ${names.join(', ') || 'none yet'}\n`);
  process.exit(1);
}
let example: Example;
try {
  example = loadExample(root, name);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}

process.stderr.write(`$ ${example.manifest.command}    (in ${example.dir})\n`);
const run = await runExample(root, example, (chunk) => process.stdout.write(chunk));
process.stderr.write(`${run.raw === '' || run.raw.endsWith('\n') ? '' : '\n'}[exit status ${run.exitCode ?? 'none: killed'}, ${(run.ms / 1000).toFixed(1)} s]\n`);

const outputFile = `${example.dir}/output.txt`;
if (args.update) {
  if (run.timedOut) {
    process.stderr.write(`${name} did not finish within ${example.manifest.timeoutSeconds ?? 60} s; ${outputFile} left as it was\n`);
    process.exit(1);
  }
  if (example.expected === run.output) process.stderr.write(`${outputFile} is already up to date\n`);
  else {
    writeFileSync(join(root, outputFile), run.output);
    const diff = lineDiff(example.expected ?? '', run.output, { labels: [`${outputFile} (before)`, `${outputFile} (now)`], maxLines: 40 });
    process.stderr.write(`wrote ${outputFile}; review the change (and the chapter that shows it):\n${diff}\n`);
  }
  // The output is recorded; an unexpected exit status is still worth failing on.
  const trouble = exampleTrouble({ ...example, expected: run.output }, run);
  if (trouble) {
    process.stderr.write(`${trouble}\n`);
    process.exit(1);
  }
  process.exit(0);
}

const trouble = exampleTrouble(example, run);
if (trouble) {
  process.stderr.write(`${trouble}\n`);
  process.exit(1);
}
process.stderr.write(`${name}: output matches ${outputFile}\n`);
