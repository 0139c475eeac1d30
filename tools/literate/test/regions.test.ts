import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dedent, LiterateError, readRegion, scanRegions } from '../src/index.ts';

const lines = (...l: string[]) => l.join('\n');

describe('scanRegions', () => {
  it('finds a region, its marker line and its dedented code', () => {
    const text = lines('const a = 1;', 'function f() {', '  // #region body', '  return 1;', '  // #endregion body', '}');
    const { regions, problems } = scanRegions(text, 'impl/src/a.ts');
    expect(problems).toEqual([]);
    expect(regions).toEqual([
      { name: 'body', file: 'impl/src/a.ts', markerLine: 3, startLine: 4, endLine: 4, code: 'return 1;' },
    ]);
  });

  it('handles nested regions, leaving the inner markers out of the outer code', () => {
    const text = lines('// #region outer', 'a();', '  // #region inner', '  b();', '  // #endregion inner', 'c();', '// #endregion outer');
    const { regions, problems } = scanRegions(text, 'f.ts');
    expect(problems).toEqual([]);
    expect(regions.map((r) => [r.name, r.markerLine, r.startLine, r.endLine])).toEqual([
      ['outer', 1, 2, 6],
      ['inner', 3, 4, 4],
    ]);
    expect(regions[0]!.code).toBe(lines('a();', '  b();', 'c();'));
    expect(regions[1]!.code).toBe('b();');
  });

  it('accepts an #endregion without a name', () => {
    const { regions, problems } = scanRegions(lines('// #region x', 'x();', '// #endregion'), 'f.ts');
    expect(problems).toEqual([]);
    expect(regions.map((r) => r.name)).toEqual(['x']);
  });

  it('reports a region that is never closed, at its marker', () => {
    const { regions, problems } = scanRegions(lines('a();', '// #region open', 'b();'), 'f.ts');
    expect(regions).toEqual([]);
    expect(problems).toEqual([{ file: 'f.ts', line: 2, message: 'region "open" is never closed (add "// #endregion open")' }]);
  });

  it('reports a duplicate name at the second marker', () => {
    const text = lines('// #region x', '// #endregion x', '', '// #region x', '// #endregion x');
    const { problems } = scanRegions(text, 'f.ts');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'f.ts', line: 4 });
    expect(problems[0]!.message).toMatch(/"x" is already defined at line 1/);
  });

  it('reports an #endregion whose name does not match the open region', () => {
    const { problems } = scanRegions(lines('// #region a', 'x();', '// #endregion b'), 'f.ts');
    expect(problems).toEqual([{ file: 'f.ts', line: 3, message: '#endregion b closes region "a" opened at line 1' }]);
  });

  it('reports an #endregion with no #region, and a region without a usable name', () => {
    const { problems } = scanRegions(lines('// #endregion stray', '// #region', '// #region bad.name'), 'f.ts');
    expect(problems.map((p) => p.line)).toEqual([1, 2, 3]);
    expect(problems[0]!.message).toMatch(/has no matching #region/);
    expect(problems[1]!.message).toMatch(/needs a name/);
  });

  it('ignores text that only looks like a marker', () => {
    const text = lines('const s = "// #region x";', '/* #region y */', '// #regional z');
    expect(scanRegions(text, 'f.ts')).toEqual({ regions: [], problems: [] });
  });
});

describe('dedent', () => {
  it('removes the indentation every non-blank line shares', () => {
    expect(dedent(['    a', '      b', '', '    c'])).toEqual(['a', '  b', '', 'c']);
  });
  it('drops blank lines at both ends and trailing spaces', () => {
    expect(dedent(['', '  ', '  a  ', '    b', '   ', ''])).toEqual(['a', '  b']);
  });
  it('leaves unindented text and empty input alone', () => {
    expect(dedent(['a', ' b'])).toEqual(['a', ' b']);
    expect(dedent([])).toEqual([]);
    expect(dedent(['', ''])).toEqual([]);
  });
  it('counts a tab as one character of indentation', () => {
    expect(dedent(['\t\ta', '\tb'])).toEqual(['\ta', 'b']);
  });
});

describe('readRegion', () => {
  const root = mkdtempSync(join(tmpdir(), 'literate-regions-'));
  writeFileSync(join(root, 'a.ts'), lines('// #region r', '  r();', '// #endregion r'));

  it('reads a region from a file', () => {
    expect(readRegion(root, 'a.ts', 'r').code).toBe('r();');
  });
  it('throws a LiterateError naming the reference for a missing region or file', () => {
    const from = { file: 'book/c.mdx', line: 3, col: 1, message: '' };
    expect(() => readRegion(root, 'a.ts', 'nope', from)).toThrow(LiterateError);
    expect(() => readRegion(root, 'a.ts', 'nope', from)).toThrow('book/c.mdx:3:1: region "nope" not found in a.ts');
    expect(() => readRegion(root, 'gone.ts', 'r', from)).toThrow('book/c.mdx:3:1: cannot read gone.ts');
  });
});
