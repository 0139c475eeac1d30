// @ts-check
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'astro/config';
import starlight from '@astrojs/starlight';
import { findRepoRoot, loadBook } from '@saf/literate';

const siteDir = fileURLToPath(new URL('.', import.meta.url));
const root = findRepoRoot(siteDir);
const book = loadBook(root);

/**
 * Where the site is published. GitHub Pages passes both (see
 * .github/workflows/pages.yml); a local build serves from the root.
 */
const site = process.env.SITE_URL || 'http://127.0.0.1:4321';
const base = normaliseBase(process.env.BASE_PATH);

function normaliseBase(/** @type {string | undefined} */ raw) {
  const trimmed = (raw ?? '').trim().replace(/^\/+|\/+$/g, '');
  return trimmed ? `/${trimmed}` : '/';
}

/**
 * The sidebar is book.json: parts as groups, chapters in reading order.
 * A chapter's label is the title in its front matter (Starlight fills it in
 * from the `slug`).
 */
const sidebar = book.parts.map((part) => ({
  label: part.title,
  items: part.chapters.map((slug) => ({ slug })),
}));

/**
 * Chapters are loaded from ../book, so Starlight sees their path as
 * `../book/<slug>.mdx` and appends it to `editLink.baseUrl`; the URL
 * parser then removes the `site/..`, leaving `<repo>/edit/<branch>/book/<slug>.mdx`.
 */
const editBase = `${book.repository.replace(/\/$/, '')}/edit/${book.branch}/site/`;

export default defineConfig({
  site,
  base,
  integrations: [
    starlight({
      title: book.title,
      description: book.subtitle,
      sidebar,
      editLink: { baseUrl: editBase },
      social: [{ icon: 'github', label: 'Source code', href: book.repository }],
      components: {
        SocialIcons: './src/components/overrides/SocialIcons.astro',
        Footer: './src/components/overrides/Footer.astro',
      },
      customCss: ['./src/styles/book.css'],
      lastUpdated: false,
    }),
  ],
  vite: {
    resolve: {
      alias: {
        '@book/components': fileURLToPath(new URL('./src/components/index.ts', import.meta.url)),
      },
      // Chapters live outside site/, and their imports must find the same Starlight.
      dedupe: ['@astrojs/starlight'],
    },
  },
});
