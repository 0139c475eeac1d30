/**
 * Prints the book to site/dist/book.pdf, after `astro build`:
 *
 *   1. serve site/dist on 127.0.0.1 and open /print/ in the system Chromium
 *      (light colours, print media);
 *   2. pass 1: print, and read where each chapter starts from the PDF's named
 *      destinations (`pdfinfo -dests`; Chromium records element ids there);
 *   3. write those page numbers into the table of contents and print again;
 *      check that no chapter moved (else print once more, up to 4 passes).
 *
 * Without a browser it says so in one line and leaves the HTML as built;
 * without pdfinfo it prints once, with no page numbers in the contents.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Page } from 'puppeteer-core';
import { NO_BROWSER_HINT, findBrowser, launchBrowser } from './browser.ts';
import { distDir, serveDist } from './dist-server.ts';
import { pdfDests, pdfPageCount, hasPdfinfo } from './poppler.ts';

const started = Date.now();
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;
const say = (line: string) => process.stdout.write(`pdf: ${line}\n`);

const output = join(distDir, 'book.pdf');
if (!existsSync(join(distDir, 'print', 'index.html'))) {
  process.stderr.write(`pdf: ${relative(process.cwd(), join(distDir, 'print/index.html'))} is missing; run \`astro build\` first\n`);
  process.exit(1);
}

const executable = findBrowser();
if (!executable) {
  say(`the HTML is built in site/dist, but no browser was found to print the PDF: ${NO_BROWSER_HINT}`);
  process.exit(0);
}
const withNumbers = hasPdfinfo();
if (!withNumbers) say('pdfinfo not found, so the contents will have no page numbers: apt-get install poppler-utils');

type StartPages = Record<string, number>;

async function printOnce(page: Page, pass: number): Promise<Uint8Array> {
  const t = Date.now();
  say(`printing pass ${pass}…`);
  const pdf = await page.pdf({
    printBackground: true,
    preferCSSPageSize: true,
    displayHeaderFooter: false,
    outline: true,
    tagged: true,
    timeout: 0,
  });
  say(`pass ${pass}: ${(pdf.length / 1024).toFixed(0)} KB in ${seconds(t)}`);
  return pdf;
}

async function chapterIds(page: Page): Promise<string[]> {
  return page.$$eval('.chapter', (els) => els.map((el) => el.id));
}

function startPages(file: string, ids: string[]): StartPages {
  const dests = pdfDests(file);
  const out: StartPages = {};
  const missing: string[] = [];
  for (const id of ids) {
    const p = dests.get(id);
    if (p === undefined) missing.push(id);
    else out[id] = p;
  }
  if (missing.length) throw new Error(`the PDF has no destination for ${missing.join(', ')}`);
  return out;
}

async function fillContents(page: Page, pages: StartPages | undefined): Promise<void> {
  await page.evaluate((numbers) => {
    for (const el of document.querySelectorAll<HTMLElement>('[data-toc-page]')) {
      el.textContent = numbers ? String(numbers[el.dataset.tocPage ?? ''] ?? '') : '';
    }
  }, pages ?? null);
}

const same = (a: StartPages, b: StartPages) => Object.keys(a).every((k) => a[k] === b[k]);

const server = await serveDist();
const browser = await launchBrowser(executable);
const work = mkdtempSync(join(tmpdir(), 'saf-pdf-'));
try {
  say(`${executable}, ${await browser.version()}; serving site/dist at ${server.url}`);
  const page = await browser.newPage();
  page.on('pageerror', (e) => say(`page error: ${(e as Error).message}`));
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.emulateMediaType('print');
  const response = await page.goto(`${server.url}print/`, { waitUntil: 'networkidle0', timeout: 120_000 });
  if (!response?.ok()) throw new Error(`${server.url}print/ answered ${response?.status()}`);
  await page.waitForFunction(() => document.documentElement.dataset.linksReady === 'true');
  const unready = await page.evaluate(async () => {
    await document.fonts.ready;
    // Images must be loaded and decoded before printing, or they print blank.
    const settle = Promise.all([...document.images].map((img) => img.decode().catch(() => undefined)));
    await Promise.race([settle, new Promise((ok) => setTimeout(ok, 20_000))]);
    return [...document.images].filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.currentSrc || img.src);
  });
  if (unready.length) throw new Error(`images that did not load: ${unready.join(', ')}`);
  const ids = await chapterIds(page);

  let pdf: Uint8Array;
  if (!withNumbers) {
    await fillContents(page, undefined);
    pdf = await printOnce(page, 1);
  } else {
    const file = join(work, 'pass.pdf');
    pdf = await printOnce(page, 1);
    writeFileSync(file, pdf);
    let pages = startPages(file, ids);
    for (let pass = 2; ; pass++) {
      say(`chapters start on pages ${ids.map((id) => pages[id]).join(', ')}`);
      await fillContents(page, pages);
      pdf = await printOnce(page, pass);
      writeFileSync(file, pdf);
      const now = startPages(file, ids);
      if (same(pages, now)) break;
      if (pass >= 4) throw new Error(`chapter start pages keep moving (${JSON.stringify(now)}); the contents would be wrong`);
      say('filling in the numbers moved a chapter; printing again');
      pages = now;
    }
  }
  writeFileSync(output, pdf);
  const count = withNumbers ? `${pdfPageCount(output)} pages, ` : '';
  say(`wrote ${relative(process.cwd(), output)} (${count}${(statSync(output).size / 1024).toFixed(0)} KB) in ${seconds(started)}`);
} catch (e) {
  process.stderr.write(`pdf: ${(e as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
  await server.close();
  rmSync(work, { recursive: true, force: true });
}
