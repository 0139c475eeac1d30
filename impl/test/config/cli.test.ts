import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCorpus } from './corpus-files.ts';

const repo = join(import.meta.dirname, '..', '..', '..');
const configs = 'impl/test/configs';
/** The corpus, copied so that the files it names (tables, keys) exist: `smtpd -n` opens them. */
const corpus = copyCorpus();
const conf = (name: string) => join(corpus.root, name);
afterAll(() => corpus.remove());

/** Runs the smtpd command as an administrator would, from the repository root. */
function smtpd(...args: string[]) {
  const r = spawnSync('npx', ['tsx', 'impl/src/cli/smtpd.ts', ...args], { cwd: repo, encoding: 'utf8' });
  // npx may warn about the local npm configuration; that is not smtpd's output.
  const stderr = r.stderr.split('\n').filter((l) => !l.startsWith('npm warn')).join('\n');
  return { code: r.status, stdout: r.stdout, stderr };
}

describe('smtpd -n', { timeout: 30_000 }, () => {
  it('says "configuration OK" and exits 0 for a valid file', () => {
    const r = smtpd('-n', '-f', conf('valid/debian-default.conf'));
    expect(r).toEqual({ code: 0, stdout: 'configuration OK\n', stderr: '' });
  });

  it('prints each error with FILE:LINE:COL and its hint, and exits 1', () => {
    const r = smtpd('-n', '-f', `${configs}/invalid.conf`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`${configs}/invalid.conf:2:15: "/etc/aliases" must be quoted`);
    expect(lines[1]).toBe('    hint: an argument that starts with "/" must be written in double quotes: "/etc/aliases"');
    expect(lines).toContain(`${configs}/invalid.conf:3:1: unknown statement "lisen"`);
    expect(lines.filter((l) => !l.startsWith('    hint: '))).toHaveLength(7);
  });

  it('refuses a -B that names no queue backend, and says which exist', () => {
    const r = smtpd('-B', 'queue=nope', '-n', '-f', conf('valid/debian-default.conf'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smtpd: -B queue=nope: expected queue=NAME, NAME one of fs, log, ram/);
  });

  it('with -v, prints the configuration in canonical form first', () => {
    const r = smtpd('-n', '-v', '-f', conf('valid/debian-default.conf'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      `table aliases file:${corpus.root}/tables/aliases`,
      'listen on localhost',
      'action "local" maildir alias <aliases>',
      'action "relay" relay',
      'match for local action "local"',
      'match from local for any action "relay"',
      'configuration OK',
      '',
    ].join('\n'));
  });

  it('applies -D macros', () => {
    const r = smtpd('-n', '-v', '-D', 'lan_addr=10.1.2.3', '-f', conf('valid/macros.conf'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('listen on 10.1.2.3 port 2525 tag LAN');
  });

  it('opens the files the configuration names, and says where each is named', () => {
    const r = smtpd('-n', '-f', conf('invalid/pki-key-missing.conf'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe([
      `${conf('invalid/pki-key-missing.conf')}:3:26: cannot read the key of pki mail.example.org "${corpus.root}/pki/no-such.key": no such file`,
      '    hint: check the path, and that the file exists and is readable by root',
      '',
    ].join('\n'));
  });

  it('refuses auth without a table, with the error the daemon gives at start', () => {
    const file = conf('invalid/differs-man-tls-auth.conf');
    const r = smtpd('-n', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe([
      `${file}:9:1: "auth" without a table would check the system's passwords, which this smtpd cannot read`,
      '    hint: name a credentials table, as in `auth <creds>` with `table creds file:/etc/mail/creds` holding "user hash" lines, ' +
        'each hash made by `smtpctl encrypt`',
      '',
    ].join('\n'));
  });

  it('prints warnings, and still exits 0', () => {
    const r = smtpd('-n', '-f', conf('valid/ext-maildir-forward-file.conf'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('configuration OK\n');
    expect(r.stderr).toMatch(/:3:24: warning: "forward-file" right after maildir is read as the option, not as a folder name\n {4}hint: /);
  });

  it('reports a missing file', () => {
    const r = smtpd('-n', '-f', `${configs}/nonexistent.conf`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`${configs}/nonexistent.conf: cannot read the configuration: no such file`);
  });

  it('runs the same from bin/smtpd.mjs, the command installed for the examples', () => {
    const r = spawnSync('impl/bin/smtpd.mjs', ['-n', '-f', conf('valid/man-dkim.conf')], { cwd: repo, encoding: 'utf8' });
    expect([r.status, r.stdout]).toEqual([0, 'configuration OK\n']);
  });
});
