import { defineCollection } from 'astro:content';
import { glob } from 'astro/loaders';
import { docsSchema } from '@astrojs/starlight/schema';

// The chapters stay in the top-level book/ folder; files starting with _ are drafts or partials.
export const collections = {
  docs: defineCollection({
    loader: glob({ base: '../book', pattern: '**/[^_]*.{md,mdx}' }),
    schema: docsSchema(),
  }),
};
