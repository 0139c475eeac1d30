import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleTrouble, lineDiff, listExamples, loadExample, normalizeOutput, runExample } from '../src/index.ts';

describe('normalizeOutput', () => {
  const root = '/home/me/store-and-forward';

  it('turns CRLF into LF, trims trailing blanks and ends with exactly one newline', () => {
    expect(normalizeOutput('a  \r\nb\t\r\n\r\n\n', root)).toBe('a\nb\n');
    expect(normalizeOutput('a', root)).toBe('a\n');
    expect(normalizeOutput('', root)).toBe('\n');
  });

  it('replaces the repository path with <repo>', () => {
    expect(normalizeOutput(`error in ${root}/impl/src/a.ts:3\n`, root)).toBe('error in <repo>/impl/src/a.ts:3\n');
  });

  it('applies the declared rules in order, globally unless flags say otherwise', () => {
    const rules = [
      { pattern: '\\d{4}-\\d\\d-\\d\\d', replace: '<date>', why: 'today' },
      { pattern: '<date> (\\w+)', replace: '<date> [$1]', why: 'order matters' },
      { pattern: 'id=\\w+', flags: '', replace: 'id=<id>', why: 'random; only the first' },
    ];
    expect(normalizeOutput('2025-01-02 ok id=abc\n2025-03-04 fine id=def\n', root, rules)).toBe('<date> [ok] id=<id>\n<date> [fine] id=def\n');
  });

  it('honours case-insensitive and multiline flags', () => {
    const rules = [{ pattern: '^queue-id: .*$', flags: 'gim', replace: 'Queue-Id: <id>', why: 'random' }];
    expect(normalizeOutput('QUEUE-ID: 1f2e\nqueue-id: 77\n', root, rules)).toBe('Queue-Id: <id>\nQueue-Id: <id>\n');
  });
});

describe('lineDiff', () => {
  it('is empty for equal texts', () => {
    expect(lineDiff('a\n', 'a\n')).toBe('');
  });
  it('shows the first differing lines with context and line numbers', () => {
    const diff = lineDiff('a\nb\nc\nd\n', 'a\nB\nc\nd\n', { labels: ['output.txt', 'now'] });
    expect(diff.split('\n')).toEqual(['--- output.txt', '+++ now', '@@ -1,4 +1,4 @@', ' a', '-b', '+B', ' c', ' d']);
  });
  it('cuts a long diff short and says how much it left out', () => {
    const many = (p: string) => Array.from({ length: 50 }, (_, i) => `${p}${i}`).join('\n') + '\n';
    const diff = lineDiff(many('x'), many('y'), { maxLines: 10 });
    expect(diff.split('\n')).toHaveLength(2 + 10 + 1);
    expect(diff).toMatch(/\.\.\. 91 more lines of diff not shown$/);
  });
});

describe('examples on disk', () => {
  const root = mkdtempSync(join(tmpdir(), 'literate-examples-'));
  const make = (name: string, manifest: object, output?: string) => {
    mkdirSync(join(root, 'snippets', name), { recursive: true });
    writeFileSync(join(root, 'snippets', name, 'example.json'), JSON.stringify(manifest));
    if (output !== undefined) writeFileSync(join(root, 'snippets', name, 'output.txt'), output);
  };
  make('b/slow', { description: 'hangs', command: 'sleep 5', show: [], timeoutSeconds: 0.3 }, '');
  make('a/echo', { description: 'echoes', command: 'echo "$PWD"; echo oops >&2', show: [] }, '<repo>/snippets/a/echo\noops\n');
  make('a/bad-show', { description: 'shows a missing file', command: 'true', show: ['gone.ts'] });
  mkdirSync(join(root, 'snippets', 'node_modules', 'x'), { recursive: true });

  it('lists example folders by name', () => {
    expect(listExamples(root)).toEqual(['a/bad-show', 'a/echo', 'b/slow']);
  });

  it('runs an example in its folder, stderr with stdout, and normalises the output', async () => {
    const example = loadExample(root, 'a/echo');
    const run = await runExample(root, example);
    expect(run.exitCode).toBe(0);
    expect(run.output).toBe('<repo>/snippets/a/echo\noops\n');
    expect(exampleTrouble(example, run)).toBeUndefined();
  });

  it('stops an example that runs too long', async () => {
    const example = loadExample(root, 'b/slow');
    const run = await runExample(root, example);
    expect(run.timedOut).toBe(true);
    expect(run.ms).toBeLessThan(4000);
    expect(exampleTrouble(example, run)).toMatch(/did not finish within 0.3 s/);
  });

  it('refuses a manifest that shows a file the example does not have', () => {
    expect(() => loadExample(root, 'a/bad-show')).toThrow('snippets/a/bad-show/example.json:1: "show" names gone.ts');
  });
});
