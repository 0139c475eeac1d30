import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { delimiter, extname, join } from 'node:path';
import { LiterateError } from './problems.ts';

/**
 * A runnable example lives in `snippets/<chapter>/<name>/`. Its
 * `example.json` says how to run it and which files the book shows;
 * `output.txt` is the output exactly as the book prints it. The checker runs
 * the example, normalises what it printed, and compares it with output.txt.
 */
export interface ExampleManifest {
  /** One sentence: what the example shows. */
  description: string;
  /** A shell command, run in the example's folder with the workspace's tools on PATH. */
  command: string;
  /** Files of the example the book shows, in order. */
  show: string[];
  /** The exit status the example is expected to end with (an example may show an error). */
  exitCode?: number;
  /** Rules that replace volatile parts of the output (dates, ids, ports). */
  normalize?: NormalizeRule[];
  /** How long it may run before it counts as hung; 60 seconds unless said. */
  timeoutSeconds?: number;
}

export interface NormalizeRule {
  /** A JavaScript regular expression, applied to the whole output. */
  pattern: string;
  flags?: string;
  replace: string;
  /** Why the part is volatile; shown to the reader in CONTRIBUTING and reviews. */
  why: string;
}

export interface Example {
  /** `<chapter>/<name>`, the name chapters and `pnpm example` use. */
  name: string;
  /** Repository-relative folder. */
  dir: string;
  manifest: ExampleManifest;
  /** The output the book shows (contents of output.txt), or undefined if not recorded yet. */
  expected: string | undefined;
}

export const SNIPPETS_DIR = 'snippets';

export function exampleDir(name: string): string {
  return `${SNIPPETS_DIR}/${name}`;
}

/** Every example folder (one with an example.json), sorted by name. */
export function listExamples(root: string): string[] {
  const base = join(root, SNIPPETS_DIR);
  if (!existsSync(base)) return [];
  const names: string[] = [];
  for (const chapter of readdirSync(base).sort()) {
    const cdir = join(base, chapter);
    if (!statSync(cdir).isDirectory() || chapter === 'node_modules') continue;
    for (const ex of readdirSync(cdir).sort()) {
      if (existsSync(join(cdir, ex, 'example.json'))) names.push(`${chapter}/${ex}`);
    }
  }
  return names;
}

export function loadExample(root: string, name: string): Example {
  const dir = exampleDir(name);
  const manifestPath = join(root, dir, 'example.json');
  if (!existsSync(manifestPath)) {
    throw new LiterateError({ file: `${dir}/example.json`, line: 1, message: `example "${name}" does not exist (no ${dir}/example.json)` });
  }
  let manifest: ExampleManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ExampleManifest;
  } catch (e) {
    throw new LiterateError({ file: `${dir}/example.json`, line: 1, message: `not valid JSON: ${(e as Error).message}` });
  }
  if (typeof manifest.command !== 'string' || !Array.isArray(manifest.show)) {
    throw new LiterateError({ file: `${dir}/example.json`, line: 1, message: 'needs "command" (a string) and "show" (a list of files)' });
  }
  for (const f of manifest.show) {
    if (!existsSync(join(root, dir, f))) {
      throw new LiterateError({ file: `${dir}/example.json`, line: 1, message: `"show" names ${f}, which is not in ${dir}` });
    }
  }
  const outPath = join(root, dir, 'output.txt');
  const expected = existsSync(outPath) ? readFileSync(outPath, 'utf8') : undefined;
  return { name, dir, manifest, expected };
}

/** The text of one file of an example, as the book shows it. */
export function exampleFile(root: string, example: Example, file: string): string {
  return readFileSync(join(root, example.dir, file), 'utf8').replace(/\s+$/, '');
}

/** Shiki language for a file shown in the book. */
export function languageOf(file: string): string {
  const ext = extname(file).slice(1);
  if (file.endsWith('smtpd.conf') || ext === 'conf') return 'smtpd-conf';
  return ({ ts: 'ts', mts: 'ts', js: 'js', mjs: 'js', sh: 'sh', json: 'json', py: 'python', txt: 'txt', eml: 'txt' } as Record<string, string>)[ext] ?? 'txt';
}

/**
 * Normalises an example's output: first the rules every example gets (line
 * endings, trailing blanks, the repository's absolute path), then the
 * example's own declared rules, in order.
 */
export function normalizeOutput(raw: string, root: string, rules: NormalizeRule[] = []): string {
  let out = raw.replace(/\r\n/g, '\n').split(root).join('<repo>');
  for (const rule of rules) out = out.replace(new RegExp(rule.pattern, rule.flags ?? 'g'), rule.replace);
  out = out.split('\n').map((l) => l.trimEnd()).join('\n').replace(/\n+$/, '');
  return out + '\n';
}

export interface ExampleRun {
  exitCode: number | null;
  /** Interleaved stdout and stderr, as a terminal shows them. */
  raw: string;
  /** After normalisation: what output.txt must hold. */
  output: string;
  timedOut: boolean;
  ms: number;
}

/**
 * Runs an example the way a reader would: in its folder, with the
 * workspace's bin folder on PATH, colours off and the clock in UTC.
 */
export function runExample(root: string, example: Example, onData?: (chunk: string) => void): Promise<ExampleRun> {
  const started = Date.now();
  const timeoutMs = (example.manifest.timeoutSeconds ?? 60) * 1000;
  return new Promise((resolveRun) => {
    const child = spawn('sh', ['-c', `exec 2>&1\n${example.manifest.command}`], {
      cwd: join(root, example.dir),
      env: {
        ...process.env,
        // The snippets package's own bin folder first: it holds the MTA's commands
        // (smtpd, makemap), which must win over any installed system-wide.
        PATH: [join(root, SNIPPETS_DIR, 'node_modules/.bin'), join(root, 'node_modules/.bin'), process.env.PATH].join(delimiter),
        NO_COLOR: '1',
        FORCE_COLOR: '0',
        TZ: 'UTC',
        LC_ALL: 'C',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let raw = '';
    let timedOut = false;
    const take = (b: Buffer) => {
      const s = b.toString('utf8');
      raw += s;
      onData?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({
        exitCode: code,
        raw,
        output: normalizeOutput(raw, root, example.manifest.normalize),
        timedOut,
        ms: Date.now() - started,
      });
    });
  });
}
