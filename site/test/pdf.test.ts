/**
 * The PDF (site/dist/book.pdf), read back with poppler: title page first,
 * every chapter in the text and the outline, the contents' page numbers
 * right, links inside the document, and no dark page backgrounds.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pdfDests, pdfPageCount } from '../scripts/poppler.ts';
import { bookChapters, distDir, hasCommand, requireDist, root, run, toc } from './helpers.ts';

const pdf = join(distDir, 'book.pdf');
let pages = 0;
let text: string[] = []; // per page, 1-based at [n - 1]
const work = mkdtempSync(join(tmpdir(), 'saf-pdf-test-'));

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
const decode = (s: string) =>
  s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&amp;/g, '&');

beforeAll(() => {
  requireDist();
  if (!existsSync(pdf)) throw new Error('site/dist/book.pdf is missing: run `pnpm build` first (with Chromium installed)');
  for (const tool of ['pdfinfo', 'pdftotext', 'pdftohtml', 'pdftoppm']) {
    if (!hasCommand(tool)) throw new Error(`${tool} is missing: apt-get install poppler-utils`);
  }
  pages = pdfPageCount(pdf);
  // Pages are separated by form feeds.
  text = run('pdftotext', ['-layout', pdf, '-']).split('\f').slice(0, pages);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

interface OutlineItem {
  title: string;
  page: number;
  depth: number;
}

function outline(): OutlineItem[] {
  const xml = run('pdftohtml', ['-xml', '-i', '-stdout', '-q', pdf]);
  const start = xml.indexOf('<outline>');
  if (start < 0) return [];
  const items: OutlineItem[] = [];
  let depth = 0;
  for (const m of xml.slice(start).matchAll(/<outline>|<\/outline>|<item page="(\d+)">([\s\S]*?)<\/item>/g)) {
    if (m[0] === '<outline>') depth++;
    else if (m[0] === '</outline>') depth--;
    else items.push({ page: Number(m[1]), title: squash(decode(m[2]!)), depth });
  }
  return items;
}

describe('the PDF', () => {
  it('has a title page as page 1, then more pages than chapters', () => {
    expect(squash(text[0]!)).toContain(toc.title);
    expect(squash(text[0]!)).toContain(toc.subtitle);
    expect(pages).toBeGreaterThan(bookChapters.length + 1);
    const dests = pdfDests(pdf);
    for (const c of bookChapters) expect(dests.get(`ch-${c.slug}`)).toBeGreaterThan(1);
  });

  it('has every chapter title from book.json in its text', () => {
    const all = squash(text.join(' '));
    for (const c of bookChapters) expect(all, c.slug).toContain(squash(c.title));
  });

  it('has every chapter in its outline, in book order, with their sections under them', () => {
    const items = outline();
    const top = items.filter((i) => i.depth === 1).map((i) => i.title);
    const chapterTitles = bookChapters.map((c) => squash(c.title));
    expect(top.filter((t) => chapterTitles.includes(t))).toEqual(chapterTitles);
    // Each chapter's outline entry points at the page where the chapter starts.
    const dests = pdfDests(pdf);
    for (const c of bookChapters) {
      const item = items.find((i) => i.depth === 1 && i.title === squash(c.title));
      expect(item?.page, c.slug).toBe(dests.get(`ch-${c.slug}`));
    }
    // Sections (the chapters' ## headings) are nested under their chapter.
    const withSections = bookChapters.filter((c) => /^##\s/m.test(readFileSync(join(root, c.file), 'utf8')));
    if (withSections.length) expect(items.some((i) => i.depth === 2)).toBe(true);
  });

  it("the contents' page numbers point at the pages where chapters start", () => {
    const dests = pdfDests(pdf);
    const contents = text.slice(1, Math.min(...bookChapters.map((c) => dests.get(`ch-${c.slug}`)!)) - 1).join('\n');
    expect(contents).toMatch(/Contents/);
    const lines = contents.split('\n').map(squash);
    for (const c of bookChapters) {
      const title = squash(c.title);
      const line = lines.find((l) => l.startsWith(title) && /\s\d+$/.test(l));
      expect(line, `a line "${title} … N" in the contents`).toBeDefined();
      const n = Number(/(\d+)$/.exec(line!)![1]);
      expect(n, c.slug).toBe(dests.get(`ch-${c.slug}`));
      // That page starts the chapter: its title is on it, and the page before ends the previous one.
      const page = squash(text[n - 1]!);
      expect(page, `page ${n}`).toContain(`${c.part.toUpperCase()} ${title}`);
      // Printed page numbers match the PDF's: the footer of page n says n.
      expect(text[n - 1]!.trim().split('\n').pop()!.trim(), `footer of page ${n}`).toBe(String(n));
    }
    // A chapter's later pages carry its title as their running header.
    const starts = bookChapters.map((c) => dests.get(`ch-${c.slug}`)!);
    bookChapters.forEach((c, i) => {
      const next = starts[i + 1] ?? pages + 1;
      if (next - starts[i]! < 2) return;
      const header = text[starts[i]!]!.trim().split('\n')[0]!.trim();
      expect(squash(header), `running header of page ${starts[i]! + 1}`).toBe(squash(c.title));
    });
  });

  it('links between chapters and in the contents stay inside the document', () => {
    const raw = readFileSync(pdf).toString('latin1');
    const internal = raw.match(/\/Dest\s*[/(]/g)?.length ?? 0;
    expect(internal, 'links to named destinations').toBeGreaterThanOrEqual(bookChapters.length);
    const uris = [...raw.matchAll(/\/URI\s*\(([^)]*)\)/g)].map((m) => m[1]!);
    expect(uris.filter((u) => /^https?:\/\/(127\.0\.0\.1|localhost)/.test(u))).toEqual([]);
  });

  it('has light pages only (no dark backgrounds, code included)', () => {
    run('pdftoppm', ['-gray', '-r', '24', pdf, join(work, 'p')]);
    const files = readdirSync(work).filter((f) => f.endsWith('.pgm')).sort();
    expect(files.length).toBe(pages);
    for (const f of files) {
      const { width, pixels } = readPgm(join(work, f));
      const dark = pixels.filter((v) => v < 100).length / pixels.length;
      // Background: the top-left corner, inside the margin.
      expect(pixels[2 * width + 2], `${f}: background`).toBeGreaterThan(240);
      // Text is dark but thin; a dark code block or page would be a large share.
      expect(dark, `${f}: share of dark pixels`).toBeLessThan(0.12);
    }
  });
});

/** A binary greyscale PGM (P5), as pdftoppm -gray writes it. */
function readPgm(file: string): { width: number; height: number; pixels: Uint8Array } {
  const buf = readFileSync(file);
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(buf.subarray(0, 64).toString('latin1'));
  if (!header) throw new Error(`${file}: not a binary PGM`);
  const width = Number(header[1]);
  const height = Number(header[2]);
  return { width, height, pixels: buf.subarray(header[0].length, header[0].length + width * height) };
}
