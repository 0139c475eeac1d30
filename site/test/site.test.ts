/**
 * The built site in a real browser (the system Chromium via puppeteer-core),
 * served from site/dist on 127.0.0.1: pages load cleanly, links answer,
 * search finds a chapter, the PDF link works, code blocks can be copied,
 * and screenshots (light and dark) go to test-artifacts/.
 *
 * Each page is visited once, before the tests, and what the tests need is
 * collected from it; the tests that interact (search, the phone menu,
 * screenshots) open their own pages.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BROWSER_HINT, findBrowser, launchBrowser } from '../scripts/browser.ts';
import { serveDist, type DistServer } from '../scripts/dist-server.ts';
import { artifactsDir, bookChapters, requireDist, toc } from './helpers.ts';

let server: DistServer;
let browser: Browser;

/** Every page of the site: home, each chapter in book order, the print page. */
const pages = [
  { name: 'home', path: '', chapter: undefined as string | undefined },
  ...bookChapters.map((c) => ({ name: c.slug, path: `${c.slug}/`, chapter: c.slug })),
  { name: 'print', path: 'print/', chapter: undefined },
];

interface Visit {
  url: string;
  problems: string[];
  links: { url: string; hash: string }[];
  ids: Set<string>;
  editLinks: string[];
  pdfLinks: { href: string; text: string; visible: boolean }[];
  /** What Pagefind indexes (Starlight marks it data-pagefind-body), lower case. */
  searchText: string;
  /** Copy buttons in each Expressive Code block. */
  copyButtons: number[];
  hasListing: boolean;
}
const visits = new Map<string, Visit>();

interface Loaded {
  page: Page;
  problems: string[];
}

/** Opens a page and records console errors, page errors, failed requests and HTTP errors. */
async function open(path: string, setup?: (page: Page) => Promise<void>): Promise<Loaded> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url ?? ''})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await setup?.(page);
  const response = await page.goto(server.url + path, { waitUntil: 'networkidle0' });
  if (!response?.ok()) problems.push(`HTTP ${response?.status()} for ${server.url + path}`);
  return { page, problems };
}

async function visit(path: string): Promise<Visit> {
  const { page, problems } = await open(path);
  const hrefs = await page.$$eval('a[href], link[href]', (els) => els.map((el) => (el as HTMLAnchorElement).href));
  const v: Visit = {
    url: server.url + path,
    problems,
    links: hrefs
      .map((h) => new URL(h))
      .filter((u) => u.origin === server.origin)
      .map((u) => ({ url: u.href.replace(/#.*$/, ''), hash: decodeURIComponent(u.hash.slice(1)) })),
    ids: new Set(await page.$$eval('[id]', (els) => els.map((e) => e.id))),
    editLinks: await page.$$eval('a[href*="/edit/"]', (els) => els.map((e) => (e as HTMLAnchorElement).href)),
    pdfLinks: await page.$$eval('a[data-pdf-link]', (els) =>
      els.map((e) => ({
        href: (e as HTMLAnchorElement).href,
        text: e.textContent ?? '',
        visible: (e as HTMLElement).offsetParent !== null,
      })),
    ),
    searchText: (await page.$$eval('[data-pagefind-body]', (els) => els.map((e) => (e as HTMLElement).innerText).join('\n'))).toLowerCase(),
    copyButtons: await page.$$eval('.expressive-code', (els) => els.map((e) => e.querySelectorAll('.copy button').length)),
    hasListing: (await page.$('.saf-listing, .saf-example')) !== null,
  };
  await page.close();
  return v;
}

beforeAll(async () => {
  requireDist('print/index.html', ...bookChapters.map((c) => `${c.slug}/index.html`));
  const executable = findBrowser();
  if (!executable) throw new Error(`no browser for the site's tests: ${NO_BROWSER_HINT}`);
  server = await serveDist();
  browser = await launchBrowser(executable);
  for (const p of pages) visits.set(p.name, await visit(p.path));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const chapterVisits = () => bookChapters.map((c) => ({ chapter: c, visit: visits.get(c.slug)! }));

describe('the built site', () => {
  it.each(pages)('$name loads with no console errors and no failed requests', ({ name }) => {
    expect(visits.get(name)!.problems).toEqual([]);
  });

  it('every internal link on every page answers 200, and its #fragment exists', async () => {
    const bad: string[] = [];
    const fetched = new Map<string, { status: number; html: string }>();
    for (const { name } of pages) {
      const v = visits.get(name)!;
      for (const link of v.links) {
        if (link.url === v.url) {
          if (link.hash && link.hash !== '_top' && !v.ids.has(link.hash)) bad.push(`${v.url}: #${link.hash} is not on the page`);
          continue;
        }
        if (!fetched.has(link.url)) {
          const res = await fetch(link.url);
          const html = (res.headers.get('content-type') ?? '').startsWith('text/html') ? await res.text() : '';
          fetched.set(link.url, { status: res.status, html });
        }
        const target = fetched.get(link.url)!;
        if (target.status !== 200) bad.push(`${v.url} links to ${link.url}: HTTP ${target.status}`);
        else if (link.hash && link.hash !== '_top' && target.html && !target.html.includes(`id="${link.hash}"`)) {
          bad.push(`${v.url} links to ${link.url}#${link.hash}, which has no such id`);
        }
      }
    }
    expect(bad).toEqual([]);
    expect(fetched.size).toBeGreaterThan(bookChapters.length);
  });

  it('each chapter has an "Edit page" link to its file in the repository', () => {
    for (const { chapter, visit: v } of chapterVisits()) {
      expect(v.editLinks).toContain(`${toc.repository.replace(/\/$/, '')}/edit/${toc.branch}/${chapter.file}`);
    }
  });

  it('search finds a word that appears in exactly one chapter', async () => {
    // A word only one chapter has, even after stemming: no other page has its first five letters
    // (Pagefind stems words: "dependencies" finds "depends").
    const others = (slug: string) => [...visits.entries()].filter(([n]) => n !== slug && n !== 'print').map(([, v]) => v.searchText);
    const homeText = visits.get('home')!.searchText;
    let pick: { word: string; slug: string } | undefined;
    for (const { chapter, visit: v } of chapterVisits()) {
      const words = [...new Set(v.searchText.match(/\b[a-z]{8,}\b/g) ?? [])].sort((a, b) => b.length - a.length || a.localeCompare(b));
      const word = words.find((w) => !homeText.includes(w.slice(0, 5)) && others(chapter.slug).every((t) => !t.includes(w.slice(0, 5))));
      if (word) {
        pick = { word, slug: chapter.slug };
        break;
      }
    }
    expect(pick, 'no word appears in exactly one chapter').toBeDefined();
    const { word, slug } = pick!;

    const { page, problems } = await open('');
    await page.click('button[data-open-modal]');
    const input = await page.waitForSelector('#starlight__search .pagefind-ui__search-input', { visible: true });
    await input!.type(word);
    await page.waitForSelector('#starlight__search .pagefind-ui__result-link', { timeout: 15_000 });
    // Pagefind fills in results as it loads them; wait until they settle.
    await page.waitForNetworkIdle({ idleTime: 300 });
    const results = await page.$$eval('#starlight__search .pagefind-ui__result-link', (els) => els.map((e) => (e as HTMLAnchorElement).href));
    await page.close();
    const paths = [...new Set(results.map((r) => new URL(r).pathname))];
    expect(paths, `searching for "${word}"`).toEqual([`${server.base}/${slug}/`]);
    expect(problems).toEqual([]);
  });

  it('the "Download PDF" link on every page answers application/pdf', async () => {
    const hrefs = new Set<string>();
    for (const { name } of pages.filter((p) => p.name !== 'print')) {
      const found = visits.get(name)!.pdfLinks;
      expect(found.length, `${name} has a Download PDF link`).toBeGreaterThan(0);
      expect(found.some((f) => f.visible && /Download PDF/.test(f.text)), `${name} shows it`).toBe(true);
      for (const f of found) hrefs.add(f.href);
    }
    expect([...hrefs]).toEqual([`${server.url}book.pdf`]);
    const res = await fetch(`${server.url}book.pdf`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await res.arrayBuffer()).subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('the Download PDF link is in the menu on a phone', async () => {
    const { page } = await open(`${bookChapters[0]!.slug}/`);
    await page.setViewport({ width: 390, height: 844 });
    await page.click('starlight-menu-button button');
    const visible = await page.$$eval('a[data-pdf-link]', (els) =>
      els.some((e) => (e as HTMLElement).offsetParent !== null && e.getBoundingClientRect().height > 0),
    );
    await page.close();
    expect(visible).toBe(true);
  });

  it('code blocks have a copy button', () => {
    let blocks = 0;
    for (const { chapter, visit: v } of chapterVisits()) {
      blocks += v.copyButtons.length;
      expect(v.copyButtons.every((n) => n === 1), `${chapter.slug}: every code block has one copy button`).toBe(true);
    }
    expect(blocks, 'the chapters have code blocks').toBeGreaterThan(0);
  });

  it('screenshots: home and a chapter, light and dark', async () => {
    mkdirSync(artifactsDir, { recursive: true });
    // A chapter that quotes code shows the most, then one with any code, else the first.
    const score = (v: Visit) => (v.hasListing ? 2 : v.copyButtons.length ? 1 : 0);
    const chapter = chapterVisits().reduce((best, c) => (score(c.visit) > score(best.visit) ? c : best)).chapter;
    for (const theme of ['light', 'dark'] as const) {
      for (const [name, path] of [['home', ''], ['chapter', `${chapter.slug}/`]] as const) {
        const { page, problems } = await open(path, async (p) => {
          await p.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: theme }]);
          await p.evaluateOnNewDocument((t) => localStorage.setItem('starlight-theme', t), theme);
        });
        expect(await page.$eval('html', (el) => el.dataset.theme)).toBe(theme);
        if (name === 'chapter') {
          // Show the code, not just the title.
          await page.evaluate(() => {
            (document.querySelector('.saf-listing, .saf-example') ?? document.querySelector('.expressive-code'))?.scrollIntoView({ block: 'start' });
            window.scrollBy(0, -96);
          });
        }
        await page.screenshot({ path: join(artifactsDir, `${name}-${theme}.png`) as `${string}.png` });
        await page.close();
        expect(problems).toEqual([]);
      }
    }
  });
});
