/**
 * Fuzzes the smtpd.conf parser and checker with mutated files from the
 * corpus (impl/test/corpus, impl/test/configs): words deleted, doubled,
 * swapped or replaced by keywords and odd values, lines spliced from
 * other files, bytes changed.
 *
 *     node --import tsx impl/fuzz/config.ts [--seed N] [--seconds N] [--case N]
 *
 * What must hold: parseConfig never throws; every problem it reports is a
 * ConfigError whose text starts with `file:line:col: ` at a line of the
 * file, and says nothing like `undefined` or `[object Object]`; it never
 * hangs (see harness.ts); and a file it accepts, printed by formatConfig
 * and parsed again, gives no error and prints the same (but for the
 * comment that stands for an `include`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, formatConfig, parseConfig } from '../src/config/index.ts';
import { RESERVED_WORDS } from '../src/config/reserved.ts';
import { fuzzMain } from './harness.ts';
import { caseRandom, mutateBytes, type Random } from './random.ts';

const TEST = join(import.meta.dirname, '..', 'test');
const CORPUS = join(TEST, 'corpus');

function confFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.conf'))
    .map((e) => join(e.parentPath, e.name));
}

/** The corpus, its @CORPUS@ placeholder filled in (the files are never opened: checkFiles is off). */
const FILES = [...confFiles(CORPUS), ...confFiles(join(TEST, 'configs'))]
  .map((path) => readFileSync(path, 'utf8').replaceAll('@CORPUS@', CORPUS));
const INCLUDED = readFileSync(join(CORPUS, 'include', 'tables.conf'), 'utf8').replaceAll('@CORPUS@', CORPUS);

const WORDS = [
  ...RESERVED_WORDS, '{', '}', '<', '>', ',', '=', '!', '"', "'", '\\', '\\\n', '$', '$lan', 'lan', '#', '\n',
  '0', '-1', '1', '65535', '65536', '99999999999999999999', '1k', '1K', '10m', '3g', '1x', '1s', '4d', '0x10',
  '"quoted"', '"un', '""', '"a\\"b"', 'file:/etc/aliases', 'db:/x.db', 'static:x', 'nope:x', '<t>', '<', '<>',
  '127.0.0.1', '::1', '10.0.0.0/8', '10.0.0.0/33', 'smtp+tls://u@h:25', 'lmtp://x', 'smtps://h', '/tmp/x',
  '@example.org', 'example.org', '*', 'lo0', 'all', 'egress', '"$lan"', '\u00e9', '\0', '\t', '\r',
];

/** A file cut into words and the spaces between them: mutations keep the file's layout around what they change. */
function tokens(text: string): string[] {
  return text.split(/(\s+|[{}<>,=!"])/).filter((t) => t !== '');
}

function mutate(r: Random, text: string): string {
  if (r.chance(0.15)) return mutateBytes(r, Buffer.from(text, 'utf8')).toString('utf8');
  const t = tokens(text);
  for (let k = r.range(1, 4); k > 0; k--) {
    const at = r.int(t.length);
    switch (r.int(7)) {
      case 0: t.splice(at, 1); break;
      case 1: t.splice(at, 0, t[at] ?? ''); break;
      case 2: { const b = r.int(t.length); [t[at], t[b]] = [t[b]!, t[at]!]; break; }
      case 3: t[at] = r.pick(WORDS); break;
      case 4: t.splice(at, 0, ' ', r.pick(WORDS), ' '); break;
      case 5: { // a line of another file
        const other = r.pick(FILES).split('\n');
        t.splice(at, 0, '\n', r.pick(other), '\n');
        break;
      }
      default: t.splice(at); // the file cut short
    }
  }
  return t.join('');
}

function lineCount(text: string): number {
  return text.split('\n').length;
}

/** The problems with one report of parseConfig. */
function checkErrors(errors: readonly unknown[], file: string, lines: number): string[] {
  const problems: string[] = [];
  for (const e of errors) {
    if (!(e instanceof ConfigError)) {
      problems.push(`not a ConfigError: ${String(e)}`);
      continue;
    }
    const text = String(e);
    if (!/^[^\n]+:\d+:\d+: \S/.test(text)) problems.push(`no file:line:col: ${JSON.stringify(text)}`);
    if (e.file === file && (e.line < 1 || e.line > lines + 1 || e.col < 1)) problems.push(`location off the file (${lines} lines): ${JSON.stringify(text)}`);
    if (/undefined|\[object |NaN/.test(text.replace(/"[^"]*"/g, ''))) problems.push(`message says too little: ${JSON.stringify(text)}`);
  }
  return problems;
}

function runCase(seed: number, n: number): string[] {
  const r = caseRandom(seed, n);
  let text = r.pick(FILES);
  text = mutate(r, text);
  if (r.chance(0.3)) text = mutate(r, text);
  const file = 'fuzz.conf';
  const options = {
    file,
    readFile: (path: string) => {
      if (path.endsWith('tables.conf')) return INCLUDED;
      throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
    },
    ...(r.chance(0.2) ? { macros: { lan: r.pick(['10.0.0.1', '', '"', 'a b', '$lan']) } } : {}),
  };
  const problems: string[] = [];
  let result;
  const started = Date.now();
  try {
    result = parseConfig(text, options);
  } catch (err) {
    return [`parseConfig threw: ${err instanceof Error ? err.stack : String(err)}`, `input: ${JSON.stringify(text)}`];
  }
  if (Date.now() - started > 2000) problems.push(`slow: ${Date.now() - started} ms`);
  problems.push(...checkErrors(result.errors, file, lineCount(text)), ...checkErrors(result.warnings, file, lineCount(text)));
  if (result.errors.length === 0) {
    try {
      const once = formatConfig(result.config);
      const again = parseConfig(once, { file: 'formatted.conf', readFile: options.readFile });
      if (again.errors.length > 0) problems.push(`the formatted file does not parse:\n    ${again.errors.map(String).join('\n    ')}\n  formatted: ${JSON.stringify(once)}`);
      // An include is printed as a comment before its statements, so it is not there the second time.
      else if (formatConfig(again.config) !== once.replace(/^# include [^\n]*\n/gm, '')) problems.push(`formatting twice differs:\n    ${JSON.stringify(once)}\n    ${JSON.stringify(formatConfig(again.config))}`);
    } catch (err) {
      problems.push(`format or reparse threw: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
  if (problems.length > 0) problems.push(`input: ${JSON.stringify(text)}`);
  return problems;
}

await fuzzMain(import.meta.url, 'config', runCase);
