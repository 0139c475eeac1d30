import { defineConfig } from 'vitest/config';

// One test run for the whole repository, one project per workspace part.
// The site's tests drive a real browser against the built site, so they run
// one file at a time and may take longer.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'impl', root: 'impl', include: ['test/**/*.test.ts'] } },
      { test: { name: 'literate', root: 'tools/literate', include: ['test/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'site',
          root: 'site',
          include: ['test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
