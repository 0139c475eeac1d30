import GithubSlugger from 'github-slugger';

/**
 * What a chapter refers to, found by reading its MDX source: the regions
 * and examples it embeds, the links it makes, and the anchors its headings
 * create. Each carries the line and column where it appears, so that the
 * checker can point at the exact spot.
 */
export type ChapterRef =
  | { kind: 'region'; file: string; name: string; line: number; col: number }
  | { kind: 'example'; name: string; line: number; col: number }
  | { kind: 'link'; href: string; line: number; col: number };

export interface ChapterScan {
  refs: ChapterRef[];
  /** Anchor ids of the chapter's headings, as the site generates them. */
  anchors: Set<string>;
  /** Problems with the references themselves (a Region without a name, say). */
  problems: { line: number; col: number; message: string }[];
}

const COMPONENT = /<(Region|Example)\b([^>]*?)\/?>/g;
const ATTRIBUTE = /([A-Za-z]+)\s*=\s*"([^"]*)"/g;
const MD_LINK = /(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
const HTML_LINK = /<a\s[^>]*?href\s*=\s*"([^"]+)"/g;
/** A reference definition, `[name]: url`, which reference-style links use. */
const LINK_DEFINITION = /^[ \t]{0,3}\[(?:[^\]\\]|\\.)+\]:[ \t]*<?([^\s>]+)>?/gm;
/** An explicit anchor in HTML or JSX, `<span id="name">`. */
const HTML_ID = /<[A-Za-z][^>]*?\sid\s*=\s*"([^"]+)"/g;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/;

/**
 * Blanks out what must not be read as references: front matter, fenced
 * code, inline code, and MDX comments. Blanking (instead of removing) keeps
 * every line and column where it was.
 */
export function maskNonProse(source: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  // A carriage return becomes a space, so CRLF files keep their columns.
  let text = source.replace(/\r(?=\n)/g, ' ');
  text = text.replace(/^---[ \t]*\n[\s\S]*?\n---[ \t]*(?:\n|$)/, blank);
  text = maskFences(text);
  text = text.replace(/\{\/\*[\s\S]*?\*\/\}/g, blank);
  // Inline code: a run of backticks up to the next run of the same length.
  text = text.replace(/(?<!`)(`+)(?!`)[^\n]*?(?<!`)\1(?!`)/g, blank);
  return text;
}

/**
 * Blanks fenced code blocks, fences included. A fence closes only on a line
 * of the same character at least as long as the opening one; a fence that is
 * never closed runs to the end of the file, as in CommonMark.
 */
function maskFences(text: string): string {
  const lines = text.split('\n');
  let fence: { char: string; length: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^[ \t]*(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence) {
      if (m && m[1]![0] === fence.char && m[1]!.length >= fence.length && m[2]!.trim() === '') fence = undefined;
    } else if (m && !(m[1]![0] === '`' && m[2]!.includes('`'))) {
      fence = { char: m[1]![0]!, length: m[1]!.length };
    } else continue;
    lines[i] = line.replace(/[^\n]/g, ' ');
  }
  return lines.join('\n');
}

/**
 * The text a heading shows, from its Markdown source: what the site's slugger
 * sees (links become their text, code loses its backticks, emphasis and tags
 * go away).
 */
export function headingText(source: string): string {
  return source
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`+/g, '')
    .replace(/(\*{1,3}|~~)(?=\S)(.*?\S)\1/g, '$2')
    .replace(/(?<![A-Za-z0-9])(_{1,3})(?=\S)(.*?\S)\1(?![A-Za-z0-9])/g, '$2')
    .replace(/\\([\\`*_{}\[\]()#+\-.!<>~|])/g, '$1')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .trim();
}

function position(text: string, index: number): { line: number; col: number } {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  return { line, col: index - before.lastIndexOf('\n') };
}

export function scanChapter(source: string): ChapterScan {
  const text = maskNonProse(source);
  const refs: ChapterRef[] = [];
  const problems: ChapterScan['problems'] = [];

  for (const m of text.matchAll(COMPONENT)) {
    const at = position(text, m.index);
    const attrs = Object.fromEntries([...m[2]!.matchAll(ATTRIBUTE)].map((a) => [a[1], a[2]]));
    if (m[1] === 'Region') {
      if (!attrs.file || !attrs.name) {
        problems.push({ ...at, message: '<Region> needs file="impl/..." and name="..."' });
        continue;
      }
      refs.push({ kind: 'region', file: attrs.file, name: attrs.name, ...at });
    } else {
      if (!attrs.name) {
        problems.push({ ...at, message: '<Example> needs name="<chapter>/<example>"' });
        continue;
      }
      refs.push({ kind: 'example', name: attrs.name, ...at });
    }
  }
  for (const re of [MD_LINK, HTML_LINK, LINK_DEFINITION]) {
    for (const m of text.matchAll(re)) {
      const at = re === LINK_DEFINITION ? m.index + m[0].indexOf('[') : m.index;
      refs.push({ kind: 'link', href: m[1]!, ...position(text, at) });
    }
  }
  refs.sort((a, b) => a.line - b.line || a.col - b.col);

  const slugger = new GithubSlugger();
  const anchors = new Set<string>(['_top']);
  // Headings are found in the masked text (so a "#" line inside a code
  // block is no heading) but slugged from the source, where inline code
  // still holds its words.
  const sourceLines = source.split('\n');
  text.split('\n').forEach((line, i) => {
    if (!HEADING.test(line)) return;
    const h = HEADING.exec(sourceLines[i]!.replace(/\r$/, ''));
    if (h) anchors.add(slugger.slug(headingText(h[2]!)));
  });
  for (const m of text.matchAll(HTML_ID)) anchors.add(m[1]!);
  return { refs, anchors, problems };
}

/**
 * How a chapter links to another page of the book: `../<slug>/`, optionally
 * with `#anchor`; or `#anchor` within the same chapter. Anything with a
 * scheme (https:, mailto:) is external and not checked here.
 */
export type InternalLink = { slug: string | undefined; anchor: string | undefined } | 'external' | 'malformed';

export function classifyLink(href: string): InternalLink {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return 'external';
  if (href.startsWith('#')) return { slug: undefined, anchor: href.slice(1) || undefined };
  const m = /^\.\.\/([a-z0-9-]+)\/?(?:#(.*))?$/.exec(href);
  if (m) return { slug: m[1], anchor: m[2] || undefined };
  // The home page of the book.
  if (href === '../' || href === '..') return { slug: '', anchor: undefined };
  return 'malformed';
}
