import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkBook, findRepoRoot, listSourceFiles, type Problem } from '../src/index.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));

describe('checkBook on the good fixture', () => {
  it('finds no problem and counts every check', async () => {
    const progress: string[] = [];
    const result = await checkBook(fixture('good'), { onProgress: (m) => progress.push(m) });
    expect(result.problems).toEqual([]);
    // 2 chapters listed, 3 regions + 2 examples resolved, 4 internal links,
    // 3 regions used, 2 snippets used, 2 example outputs.
    expect(result).toMatchObject({ passed: 18, failed: 0 });
    expect(progress).toHaveLength(2);
    expect(progress[0]).toMatch(/^\[1\/2\] first\/hello \.\.\. ok \(\d+\.\d s\)$/);
    expect(progress[1]).toMatch(/^\[2\/2\] second\/clock \.\.\. ok \(\d+\.\d s\)$/);
  });

  it('skips the example runs when asked', async () => {
    const progress: string[] = [];
    const result = await checkBook(fixture('good'), { runExamples: false, onProgress: (m) => progress.push(m) });
    expect(result).toMatchObject({ passed: 16, failed: 0 });
    expect(progress).toEqual([]);
  });
});

// Each fixture is the good one with one thing broken: exactly one problem, at this place.
const cases: [name: string, file: string, line: number, col: number | undefined, gist: RegExp, passed: number][] = [
  ['missing-region', 'book/first.mdx', 26, 1, /^region "farewell" is not in impl\/src\/greet\.ts \(regions there: greet, outer, inner\)/, 18],
  ['missing-region-file', 'book/first.mdx', 26, 1, /impl\/src\/gone\.ts does not exist/, 18],
  ['missing-example', 'book/second.mdx', 17, 15, /^example "second\/missing" does not exist \(no snippets\/second\/missing\/example\.json\)$/, 18],
  ['unused-region', 'impl/src/greet.ts', 17, undefined, /^region unused is quoted by no chapter: quote it in a chapter or remove the markers$/, 18],
  ['unused-snippet', 'snippets/second/orphan/example.json', 1, undefined, /^example second\/orphan is shown by no chapter/, 18],
  ['stale-output', 'book/first.mdx', 15, 1, /^example first\/hello no longer prints what snippets\/first\/hello\/output\.txt says:/, 17],
  ['wrong-exit-code', 'book/first.mdx', 15, 1, /^example first\/hello exited with status 2, but example\.json expects 0/, 17],
  ['broken-link-slug', 'book/second.mdx', 7, 51, /^link "\.\.\/third\/" points to chapter "third", which book\/book\.json does not list$/, 18],
  ['broken-link-anchor', 'book/second.mdx', 7, 9, /^link "\.\.\/first\/#greetings" points to #greetings, which is no heading in book\/first\.mdx \(its anchors: greeting\)$/, 17],
  ['malformed-link', 'book/second.mdx', 7, 9, /^link "\/first\/" is not a link the book can check: use \.\.\/slug\/ or \.\.\/slug\/#anchor/, 17],
  ['unlisted-chapter', 'book/third.mdx', 1, undefined, /^chapter book\/third\.mdx is not listed in book\/book\.json/, 18],
  ['missing-chapter', 'book/book.json', 13, undefined, /^chapter "third" is listed, but book\/third\.mdx does not exist/, 18],
  ['duplicate-chapter', 'book/book.json', 13, undefined, /^chapter "first" is listed twice \(first at line 9\)/, 18],
  ['malformed-marker', 'impl/src/broken.ts', 3, undefined, /^region "never-closed" is never closed/, 18],
];

describe.each(cases)('checkBook on the %s fixture', (name, file, line, col, gist, passed) => {
  it(`reports one problem at ${file}:${line}${col === undefined ? '' : `:${col}`}`, async () => {
    const result = await checkBook(fixture(name));
    expect(result.problems).toHaveLength(1);
    const problem = result.problems[0]!;
    expect({ file: problem.file, line: problem.line, col: problem.col }).toEqual({ file, line, col });
    expect(problem.message).toMatch(gist);
    expect(result).toMatchObject({ passed, failed: 1 });
  });
});

describe('what the example problems say', () => {
  const only = async (name: string): Promise<Problem> => (await checkBook(fixture(name))).problems[0]!;

  it('shows a diff of a stale output and how to update it', async () => {
    const message = (await only('stale-output')).message;
    expect(message).toContain('--- snippets/first/hello/output.txt (what the book shows)');
    expect(message).toContain('+++ what it prints now');
    expect(message).toMatch(/^ +-and goodbye$/m);
    expect(message).toContain('run "pnpm example first/hello --update" if the new output is right, then review the diff');
  });

  it('says how to declare an exit status that is the point', async () => {
    expect((await only('wrong-exit-code')).message).toContain('set "exitCode": 2 in example.json');
  });

  it('does not run examples, so finds no stale output, with runExamples false', async () => {
    const result = await checkBook(fixture('stale-output'), { runExamples: false });
    expect(result.problems).toEqual([]);
  });
});

describe('the real repository', () => {
  it('takes its regions from impl/ only, never from these fixtures', () => {
    const files = listSourceFiles(findRepoRoot());
    expect(files.every((f) => f.startsWith('impl/') && !f.includes('node_modules'))).toBe(true);
    expect(listSourceFiles(fixture('good'))).toEqual(['impl/src/greet.ts']);
  });
});
