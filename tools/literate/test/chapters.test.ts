import { describe, expect, it } from 'vitest';
import { classifyLink, headingText, maskNonProse, scanChapter } from '../src/index.ts';

const lines = (...l: string[]) => l.join('\n');

describe('scanChapter', () => {
  it('finds regions, examples and links with their line and column', () => {
    const source = lines(
      '---', // 1
      'title: T',
      'description: "[not](../a-link/)"',
      '---',
      "import { Region, Example } from '@book/components';", // 5
      '',
      'See [the queue](../queue/#on-disk) and <a href="../smtp/">SMTP</a>.',
      '',
      '  <Region file="impl/src/q.ts" name="enqueue" />',
      '<Example name="queue/hello" />', // 10
    );
    const { refs, problems } = scanChapter(source);
    expect(problems).toEqual([]);
    expect(refs).toEqual([
      { kind: 'link', href: '../queue/#on-disk', line: 7, col: 5 },
      { kind: 'link', href: '../smtp/', line: 7, col: 40 },
      { kind: 'region', file: 'impl/src/q.ts', name: 'enqueue', line: 9, col: 3 },
      { kind: 'example', name: 'queue/hello', line: 10, col: 1 },
    ]);
  });

  it('ignores references inside code fences, inline code and MDX comments', () => {
    const source = lines(
      'Before.',
      '```mdx',
      '<Region file="a.ts" name="in-fence" />',
      '[x](../in-fence/)',
      '```',
      '~~~',
      '<Example name="a/in-tilde-fence" />',
      '~~~',
      '````md',
      '```',
      '<Example name="a/in-nested-fence" />',
      '```',
      '````',
      'Inline `<Example name="a/inline" />` and ``[y](../double-ticks/) ` `` too.',
      '{/* <Region file="a.ts" name="in-comment" /> */}',
      '<Example name="a/real" />',
    );
    const { refs } = scanChapter(source);
    expect(refs).toEqual([{ kind: 'example', name: 'a/real', line: 16, col: 1 }]);
  });

  it('treats a fence that is never closed as code to the end of the file', () => {
    const { refs } = scanChapter(lines('<Example name="a/before" />', '```', '<Example name="a/after" />'));
    expect(refs.map((r) => (r.kind === 'example' ? r.name : ''))).toEqual(['a/before']);
  });

  it('keeps columns right after inline code on the same line', () => {
    const { refs } = scanChapter('Run `pnpm x` then read [this](#later).');
    expect(refs).toEqual([{ kind: 'link', href: '#later', line: 1, col: 24 }]);
  });

  it('keeps line and column in a file with CRLF line ends', () => {
    const { refs } = scanChapter('---\r\ntitle: T\r\n---\r\n\r\nText [a](../a/)\r\n');
    expect(refs).toEqual([{ kind: 'link', href: '../a/', line: 5, col: 6 }]);
  });

  it('reports a <Region> or <Example> that lacks its attributes', () => {
    const { refs, problems } = scanChapter(lines('<Region name="x" />', '', '  <Example />'));
    expect(refs).toEqual([]);
    expect(problems).toEqual([
      { line: 1, col: 1, message: '<Region> needs file="impl/..." and name="..."' },
      { line: 3, col: 3, message: '<Example> needs name="<chapter>/<example>"' },
    ]);
  });

  it('does not take an image for a link, and finds reference definitions', () => {
    const { refs } = scanChapter(lines('![a diagram](./diagrams/x.svg)', '', '[queue]: ../queue/'));
    expect(refs).toEqual([{ kind: 'link', href: '../queue/', line: 3, col: 1 }]);
  });

  it('makes the anchors the site makes for headings', () => {
    const source = lines(
      '## The `MAIL FROM` command',
      '### Why [RFC 5321](https://www.rfc-editor.org/rfc/rfc5321) says so',
      '## Notes',
      '## Notes',
      '## **Bold** and _snake_case_name_ #',
      '```',
      '## Not a heading',
      '```',
      '#NotAHeading either',
      '<span id="custom-anchor"></span>',
    );
    expect([...scanChapter(source).anchors].sort()).toEqual(
      ['_top', 'the-mail-from-command', 'why-rfc-5321-says-so', 'notes', 'notes-1', 'bold-and-snake_case_name', 'custom-anchor'].sort(),
    );
  });
});

describe('maskNonProse and headingText', () => {
  it('keeps every line and column while blanking', () => {
    const source = lines('---', 'a: b', '---', 'x `code` y', '```', 'z', '```');
    const masked = maskNonProse(source);
    expect(masked.length).toBe(source.length);
    expect(masked.split('\n')).toEqual(['   ', '    ', '   ', 'x        y', '   ', ' ', '   ']);
  });
  it('reduces a heading to its text', () => {
    expect(headingText('The `HELO` and [EHLO](../ehlo/) *commands* \\#1')).toBe('The HELO and EHLO commands #1');
  });
});

describe('classifyLink', () => {
  it('takes chapter links with and without an anchor', () => {
    expect(classifyLink('../queue/')).toEqual({ slug: 'queue', anchor: undefined });
    expect(classifyLink('../queue/#on-disk')).toEqual({ slug: 'queue', anchor: 'on-disk' });
    expect(classifyLink('../queue')).toEqual({ slug: 'queue', anchor: undefined });
  });
  it('takes anchors within the chapter and the home page', () => {
    expect(classifyLink('#on-disk')).toEqual({ slug: undefined, anchor: 'on-disk' });
    expect(classifyLink('../')).toEqual({ slug: '', anchor: undefined });
    expect(classifyLink('..')).toEqual({ slug: '', anchor: undefined });
  });
  it('leaves links with a scheme alone', () => {
    for (const href of ['https://example.com/', 'http://x', 'mailto:postmaster@example.com', 'ftp://x']) {
      expect(classifyLink(href)).toBe('external');
    }
  });
  it('calls every other link malformed', () => {
    for (const href of ['/queue/', './queue/', 'queue/', '../../queue/', '../Queue/', '../queue/index.html', '//example.com/', '../queue/x/']) {
      expect(classifyLink(href), href).toBe('malformed');
    }
  });
});
