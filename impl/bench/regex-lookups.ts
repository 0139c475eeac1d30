/**
 * One million lookups in a regex table of twenty patterns, watching memory.
 *
 *   node --expose-gc --import tsx impl/bench/regex-lookups.ts
 *
 * OpenSMTPD compiles a table's regular expressions inside every lookup
 * (and, as OpenBSD 6.8 shipped it, never freed them); here they are
 * compiled once when the table is opened, so heap and RSS should stay flat
 * however many lookups run. With --expose-gc, a collection is forced before
 * each reading so that the figures compare live memory, not garbage
 * waiting to be collected; without it, the readings are noisier.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTable } from '../src/table/index.ts';

const LOOKUPS = 1_000_000;
const CHECKPOINTS = new Set([250_000, 500_000, 750_000]);

/** Twenty patterns of the kind `match from rdns regex <table>` would use. */
const PATTERNS = [
  '^localhost$',
  '^\\[?[0-9.]+\\]?$',
  '(?i)^.*\\.dynamic\\.example\\.net$',
  '^(dsl|dialup|ppp|cable)[-.]',
  '[0-9]+-[0-9]+-[0-9]+-[0-9]+\\.',
  '^mx[[:digit:]]+\\.example\\.org$',
  '\\.dyn\\.',
  '\\.pool\\.',
  '^unknown$',
  '\\.(cn|ru|su)$',
  '^host[0-9]{3,}\\.',
  '^ip-[0-9a-f]{8}\\.',
  '^[a-z]{20,}\\.com$',
  '(^|\\.)spam(mer)?\\.',
  '\\.static\\.isp\\.example$',
  '^(www|mail|smtp)[0-9]*\\.bad\\.example$',
  '^[0-9]+\\.in-addr\\.arpa$',
  '\\.dhcp\\.',
  '^client-[0-9]+\\.',
  '\\.residential\\.',
];

/** Keys that hit early, hit late, and miss every pattern. */
const KEYS = Array.from({ length: 1000 }, (_, i) => {
  switch (i % 5) {
    case 0: return `host-${i}.dynamic.example.net`;
    case 1: return `mail${i}.example.com`;
    case 2: return `client-${i}.isp.example`;
    case 3: return `mx${i}.example.org`;
    default: return `smtp.partner${i}.example`;
  }
});

const gc = (globalThis as { gc?: () => void }).gc;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1).padStart(6)} MiB`;

function report(label: string): void {
  gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  console.log(`${label.padEnd(16)} heap used ${mib(heapUsed)}   rss ${mib(rss)}`);
}

const dir = mkdtempSync(join(tmpdir(), 'regex-bench-'));
try {
  const path = join(dir, 'rdns-patterns');
  writeFileSync(path, PATTERNS.join('\n') + '\n');
  const table = openTable('rdns', { backend: 'regex', path });

  console.log(`${PATTERNS.length} patterns, ${KEYS.length} distinct keys, ${LOOKUPS.toLocaleString('en')} lookups`);
  console.log(`gc forced before each reading: ${gc ? 'yes' : 'no (run node with --expose-gc)'}`);
  report('start');

  let matched = 0;
  let busy = 0n; // time spent looking up, readings excluded
  let since = process.hrtime.bigint();
  for (let i = 1; i <= LOOKUPS; i++) {
    if (table.match('regex', KEYS[i % KEYS.length] ?? '')) matched++;
    if (CHECKPOINTS.has(i) || i === LOOKUPS) {
      busy += process.hrtime.bigint() - since;
      report(i === LOOKUPS ? 'end' : `${i / 1000}k`);
      since = process.hrtime.bigint();
    }
  }

  const seconds = Number(busy) / 1e9;
  console.log(`matched ${matched.toLocaleString('en')} of ${LOOKUPS.toLocaleString('en')}`);
  console.log(`${Math.round(LOOKUPS / seconds).toLocaleString('en')} lookups/s (${seconds.toFixed(2)} s)`);
  table.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
