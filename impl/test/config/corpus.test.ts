/**
 * The corpus: every file under impl/test/corpus/valid must be accepted and
 * every file under invalid/ refused, by our parser and, for the files not
 * marked `# extension:` or `# differs:`, by OpenSMTPD 6.8's `smtpd -n` too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { copyCorpus, type CorpusFile } from './corpus-files.ts';

const SMTPD = '/usr/sbin/smtpd';
/** How many `smtpd -n` run at once. */
const POOL = 8;

const corpus = copyCorpus();
const compared = corpus.files.filter((f) => f.marker === undefined);

/** Why OpenSMTPD cannot be asked here, or undefined when it can. */
function referenceUnavailable(): string | undefined {
  if (!existsSync(SMTPD)) return `${SMTPD} is not installed (apt-get install opensmtpd)`;
  if (process.getuid?.() !== 0) return 'smtpd -n must run as root to read the keys';
  return undefined;
}
const unavailable = referenceUnavailable();

/** `smtpd -n -f FILE`: 0 when OpenSMTPD 6.8 accepts the file. */
function reference(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(SMTPD, ['-n', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

/** Runs `task` on every item, at most `size` at a time. */
async function pool<T, R>(items: readonly T[], size: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return results;
}

const theirs = new Map<string, { code: number; output: string }>();
const ours = (f: CorpusFile) => loadConfig(f.path);

beforeAll(async () => {
  if (unavailable) return;
  const results = await pool(compared, POOL, (f) => reference(f.path));
  compared.forEach((f, i) => theirs.set(f.name, results[i]!));
}, 60_000);

afterAll(() => {
  const agreed = compared.filter((f) => {
    const t = theirs.get(f.name);
    return t !== undefined && (t.code === 0) === (ours(f).errors.length === 0);
  }).length;
  const invalid = corpus.files.filter((f) => f.expected === 'invalid').length;
  console.log(unavailable
    ? `corpus: ${corpus.files.length} files (${corpus.files.length - invalid} valid, ${invalid} invalid); not compared with OpenSMTPD 6.8: ${unavailable}`
    : `corpus: ${corpus.files.length} files (${corpus.files.length - invalid} valid, ${invalid} invalid); compared with OpenSMTPD 6.8: ${theirs.size}, agreed: ${agreed}`);
  corpus.remove();
});

describe('the corpus', () => {
  it('has at least 60 files, 20 of them invalid, each saying what it exercises', () => {
    expect(corpus.files.length).toBeGreaterThanOrEqual(60);
    expect(corpus.files.filter((f) => f.expected === 'invalid').length).toBeGreaterThanOrEqual(20);
    for (const f of corpus.files) expect(f.summary, f.name).toMatch(/^# \S/);
  });

  it.each(corpus.files.map((f) => [f.name, f] as const))('%s: our verdict matches its directory', (_, f) => {
    const { errors } = ours(f);
    if (f.expected === 'valid') expect(errors.map(String)).toEqual([]);
    else expect(errors.length, 'the file should be refused').toBeGreaterThan(0);
  });
});

describe('the corpus, compared with OpenSMTPD 6.8 (smtpd -n)', () => {
  if (unavailable) {
    if (process.env.CI) {
      it('needs OpenSMTPD 6.8', () => {
        throw new Error(`CI must compare the corpus with OpenSMTPD 6.8, but ${unavailable}; .ci/run installs opensmtpd and runs as root`);
      });
    } else {
      it.skip(`skipped: ${unavailable}`, () => {});
    }
    return;
  }

  it.each(compared.map((f) => [f.name, f] as const))('%s: OpenSMTPD 6.8 agrees', (_, f) => {
    const t = theirs.get(f.name)!;
    const accepted = t.code === 0;
    expect({ accepted, output: t.output.trim() }).toMatchObject({ accepted: f.expected === 'valid' });
    expect(accepted).toBe(ours(f).errors.length === 0);
  });
});
