/**
 * The configuration corpus (impl/test/corpus/): valid/*.conf and
 * invalid/*.conf, the table files, include fragments and certificates they
 * use. The files name their neighbours through the placeholder @CORPUS@, so
 * tests work on a copy in a temporary directory where @CORPUS@ is replaced
 * by the copy's absolute path, and the keys have the modes a server needs
 * (git keeps no file modes beyond the executable bit).
 */
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CORPUS = join(import.meta.dirname, '..', 'corpus');
export const PLACEHOLDER = '@CORPUS@';

export interface CorpusFile {
  /** `valid/name.conf` or `invalid/name.conf`. */
  name: string;
  expected: 'valid' | 'invalid';
  /** The path of the file in the temporary copy. */
  path: string;
  /** The text of the first line, which says what the file exercises. */
  summary: string;
  /** `# extension: ...` or `# differs: ...`: the file is not compared with OpenSMTPD 6.8. */
  marker?: string;
}

export interface CorpusCopy {
  root: string;
  files: CorpusFile[];
  remove(): void;
}

/** Every `.conf` file under a directory, recursively. */
function confFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.conf'))
    .map((e) => join(e.parentPath, e.name));
}

/** Copies the corpus to a temporary directory, ready to be read by us and by OpenSMTPD. */
export function copyCorpus(): CorpusCopy {
  const root = mkdtempSync(join(tmpdir(), 'smtpd-corpus-'));
  cpSync(CORPUS, root, { recursive: true });
  for (const file of confFiles(root)) {
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll(PLACEHOLDER, root));
  }
  // Keys and certificates private to root, as smtpd requires of keys; open.key is open on purpose.
  for (const f of readdirSync(join(root, 'pki'))) chmodSync(join(root, 'pki', f), f === 'open.key' ? 0o644 : 0o600);

  const files: CorpusFile[] = [];
  for (const expected of ['valid', 'invalid'] as const) {
    for (const f of readdirSync(join(root, expected)).filter((n) => n.endsWith('.conf')).sort()) {
      const path = join(root, expected, f);
      const lines = readFileSync(path, 'utf8').split('\n');
      const marker = lines.find((l) => /^# (extension|differs): /.test(l));
      files.push({ name: `${expected}/${f}`, expected, path, summary: lines[0] ?? '', ...(marker && { marker: marker.slice(2) }) });
    }
  }
  return { root, files, remove: () => rmSync(root, { recursive: true, force: true }) };
}
