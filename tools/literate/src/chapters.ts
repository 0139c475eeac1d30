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
const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/;

/**
 * Blanks out what must not be read as references: front matter, fenced
 * code, inline code, and MDX comments. Blanking (instead of removing) keeps
 * every line and column where it was.
 */
export function maskNonProse(source: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  let text = source.replace(/^---\n[\s\S]*?\n---\n/, blank);
  text = text.replace(/^([ \t]*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?\n[ \t]*\2[^\n]*$/gm, blank);
  text = text.replace(/\{\/\*[\s\S]*?\*\/\}/g, blank);
  text = text.replace(/`[^`\n]+`/g, blank);
  return text;
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
  for (const re of [MD_LINK, HTML_LINK]) {
    for (const m of text.matchAll(re)) refs.push({ kind: 'link', href: m[1]!, ...position(text, m.index) });
  }
  refs.sort((a, b) => a.line - b.line || a.col - b.col);

  const slugger = new GithubSlugger();
  const anchors = new Set<string>(['_top']);
  for (const line of text.split('\n')) {
    const h = HEADING.exec(line);
    if (h) anchors.add(slugger.slug(h[2]!.replace(/`/g, '')));
  }
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
