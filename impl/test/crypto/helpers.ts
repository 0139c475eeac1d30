import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { parseConfig } from '../../src/config/parser.ts';
import type { Config } from '../../src/config/ast.ts';

/** One directory for the file's tests, removed afterwards. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'saf-crypto-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface KeyPair {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate and its key, made by openssl in `dir`:
 * `rsa` or `ec` (P-256), for `cn`, with `names` as its DNS subjectAltNames.
 */
export function makeCertificate(dir: string, file: string, type: 'rsa' | 'ec', cn: string, names: string[] = [cn]): KeyPair {
  const cert = join(dir, `${file}.crt`);
  const key = join(dir, `${file}.key`);
  const newkey = type === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const san = names.length > 0 ? ['-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`] : [];
  execFileSync('openssl', ['req', '-x509', ...newkey, '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, ...san], { stdio: 'pipe' });
  chmodSync(key, 0o600);
  return { cert, key };
}

/** Parses `text` as smtpd.conf, with a rule added to make it complete; fails the test on any error. */
export function config(text: string): Config {
  const rule = 'action "local" mbox\nmatch from local for local action "local"\n';
  const { config, errors } = parseConfig(text + rule, { file: 'smtpd.conf' });
  if (errors.length > 0) throw new Error(errors.map(String).join('\n'));
  return config;
}

export function writeIn(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Is Python's crypt module here (Python ≤ 3.12, with libxcrypt)? */
export const pythonCrypt = spawnSync('python3', ['-W', 'ignore', '-c', 'import crypt'], { stdio: 'ignore' }).status === 0;

/** crypt(3) through Python, for each [password, setting]. */
export function pythonCryptAll(pairs: [string, string][]): string[] {
  const script = 'import crypt, json, sys\nprint(json.dumps([crypt.crypt(p, s) for p, s in json.load(sys.stdin)]))';
  const out = execFileSync('python3', ['-W', 'ignore', '-c', script], { input: JSON.stringify(pairs), encoding: 'utf8' });
  return JSON.parse(out) as string[];
}
