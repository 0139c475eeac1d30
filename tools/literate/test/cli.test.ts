import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addChapterToToc, checkBook, findRepoRoot, slugify } from '../src/index.ts';

const repo = findRepoRoot();
const bin = join(repo, 'node_modules/.bin');
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));
const cli = (script: string, args: string[]) => {
  const r = spawnSync(join(bin, 'tsx'), [join(repo, 'tools/literate/src/cli', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, PATH: [bin, process.env.PATH].join(delimiter), NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

// The scaffolded example runs `tsx`, as the real ones do; a copied fixture has no node_modules.
const savedPath = process.env.PATH;
beforeAll(() => {
  process.env.PATH = [bin, savedPath].join(delimiter);
});
afterAll(() => {
  process.env.PATH = savedPath;
});

const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const copyOf = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `literate-${name}-`));
  temps.push(dir);
  cpSync(fixture(name), dir, { recursive: true });
  return dir;
};

describe('pnpm check:book', () => {
  it('passes the good fixture, with the totals as the last line of stdout', () => {
    const r = cli('check-book.ts', ['--root', fixture('good')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('book check: 18 passed, 0 failed\n');
    expect(r.stderr).toMatch(/^\[1\/2\] first\/hello \.\.\. ok \(\d+\.\d s\)\n\[2\/2\] second\/clock \.\.\. ok/);
  });

  it('prints each problem as FILE:LINE:COL: message and exits 1', () => {
    const r = cli('check-book.ts', ['--root', fixture('broken-link-slug'), '--no-run']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('\nbook/second.mdx:7:51: link "../third/" points to chapter "third"');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('book check: 16 passed, 1 failed');
  });

  it('rejects an unknown flag', () => {
    const r = cli('check-book.ts', ['--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: pnpm check:book');
  });
});

describe('pnpm example', () => {
  it('lists the examples with their descriptions', () => {
    const r = cli('example.ts', ['--root', fixture('good')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('first/hello   Says hello.\nsecond/clock  Prints the time and fails on purpose.\n');
  });

  it('runs one, streaming its output, and says it matches', () => {
    const r = cli('example.ts', ['second/clock', '--root', fixture('good')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^now: \d{4}-\d\d-\d\dT/);
    expect(r.stderr).toContain('second/clock: output matches snippets/second/clock/output.txt');
  });

  it('shows the diff and exits 1 when the output has drifted', () => {
    const r = cli('example.ts', ['first/hello', '--root', fixture('stale-output')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('hello, world\n');
    expect(r.stderr).toMatch(/^ +-and goodbye$/m);
    expect(r.stderr).toContain('pnpm example first/hello --update');
  });

  it('records the output with --update', () => {
    const root = copyOf('stale-output');
    const r = cli('example.ts', ['snippets/first/hello/', '--update', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('wrote snippets/first/hello/output.txt');
    expect(readFileSync(join(root, 'snippets/first/hello/output.txt'), 'utf8')).toBe('hello, world\n');
    expect(cli('example.ts', ['first/hello', '--root', root]).code).toBe(0);
  });

  it('names the examples there are when asked for one that is not', () => {
    const r = cli('example.ts', ['first/nope', '--root', fixture('good')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no example "first/nope"');
    expect(r.stderr).toContain('first/hello, second/clock');
  });
});

describe('pnpm new-chapter', () => {
  it('makes a chapter, an example and a book.json entry that pass the book check', async () => {
    const root = copyOf('good');
    const before = readFileSync(join(root, 'book/book.json'), 'utf8');
    const r = cli('new-chapter.ts', ['Delivery: the Last Hop', '--part', 'Part one', '--root', root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('created book/delivery-the-last-hop.mdx');
    expect(r.stdout).toContain('snippets/delivery-the-last-hop/hello/output.txt');
    expect(r.stdout).toContain('added "delivery-the-last-hop" to the end of part "Part one"');
    expect(r.stdout).toContain('pnpm example delivery-the-last-hop/hello --update');

    // book.json changed in that one place, its formatting kept.
    const after = readFileSync(join(root, 'book/book.json'), 'utf8');
    expect(after).toBe(before.replace('"chapters": ["first"]', '"chapters": ["first", "delivery-the-last-hop"]'));

    const chapter = readFileSync(join(root, 'book/delivery-the-last-hop.mdx'), 'utf8');
    expect(chapter).toMatch(/^---\ntitle: "Delivery: the Last Hop"\ndescription: ".+"\n---\n/);
    expect(chapter).toContain("import { Region, Example } from '@book/components';");
    expect(chapter).toContain('## Try it');
    expect(chapter).toContain('<Example name="delivery-the-last-hop/hello" />');
    const example = JSON.parse(readFileSync(join(root, 'snippets/delivery-the-last-hop/hello/example.json'), 'utf8'));
    expect(example).toMatchObject({ command: 'tsx hello.ts', show: ['hello.ts'] });
    expect(readFileSync(join(root, 'snippets/delivery-the-last-hop/hello/output.txt'), 'utf8')).toBe('Hello from "Delivery: the Last Hop".\n');

    const result = await checkBook(root);
    expect(result.problems).toEqual([]);
    expect(result.failed).toBe(0);

    // A second time is refused, and changes nothing.
    const again = cli('new-chapter.ts', ['Delivery: the last hop', '--root', root]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('book/delivery-the-last-hop.mdx already exists');
    expect(readFileSync(join(root, 'book/book.json'), 'utf8')).toBe(after);
  });

  it('adds to the last part by default, and refuses a part that does not exist', () => {
    const root = copyOf('good');
    const bad = cli('new-chapter.ts', ['Queue', '--part', 'Part nine', '--root', root]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('no part titled "Part nine" (parts: "Part one", "Part two")');
    expect(existsSync(join(root, 'book/queue.mdx'))).toBe(false);
    expect(existsSync(join(root, 'snippets/queue'))).toBe(false);

    expect(cli('new-chapter.ts', ['Queue', '--root', root]).code).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'book/book.json'), 'utf8')).parts[1].chapters).toEqual(['second', 'queue']);
  });

  it('asks for a title', () => {
    const r = cli('new-chapter.ts', []);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: pnpm new-chapter');
  });
});

describe('slugify and addChapterToToc', () => {
  it('makes URL-safe slugs', () => {
    expect(slugify('The SMTP Dialogue, Part 2!')).toBe('the-smtp-dialogue-part-2');
    expect(slugify("  Réception d'un message  ")).toBe('reception-dun-message');
    expect(slugify('MX & DNS: who gets the mail?')).toBe('mx-dns-who-gets-the-mail');
    expect(slugify('!!!')).toBe('');
  });

  it('edits book.json in place, whatever the layout of the list', () => {
    const multi = '{\n  "parts": [\n    {\n      "title": "A",\n      "chapters": [\n        "one",\n        "two"\n      ]\n    }\n  ]\n}\n';
    expect(addChapterToToc(multi, 'three').text).toBe(multi.replace('"two"', '"two",\n        "three"'));
    const empty = '{ "parts": [ { "title": "A", "chapters": [] }, { "title": "B", "chapters": ["x"] } ] }';
    expect(addChapterToToc(empty, 'y', 'A').text).toBe(empty.replace('[]', '["y"]'));
    expect(addChapterToToc(empty, 'y', 'A').part).toBe('A');
    expect(() => addChapterToToc(empty, 'y', 'C')).toThrow('no part titled "C"');
  });

  it('finds the part by its title even when a chapter has the same name', () => {
    const tricky = '{"parts":[{"title":"x","chapters":["a"]},{"title":"y, \\"z\\"","chapters":["x"]}]}';
    const { text } = addChapterToToc(tricky, 'b', 'y, "z"');
    expect(JSON.parse(text).parts[1].chapters).toEqual(['x', 'b']);
    expect(text).toBe(tricky.replace('["x"]', '["x", "b"]'));
  });
});
