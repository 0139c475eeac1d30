import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..', '..');
const configs = 'impl/test/configs';

/** Runs the smtpd command as an administrator would, from the repository root. */
function smtpd(...args: string[]) {
  const r = spawnSync('npx', ['tsx', 'impl/src/cli/smtpd.ts', ...args], { cwd: repo, encoding: 'utf8' });
  // npx may warn about the local npm configuration; that is not smtpd's output.
  const stderr = r.stderr.split('\n').filter((l) => !l.startsWith('npm warn')).join('\n');
  return { code: r.status, stdout: r.stdout, stderr };
}

describe('smtpd -n', { timeout: 30_000 }, () => {
  it('says "configuration OK" and exits 0 for a valid file', () => {
    const r = smtpd('-n', '-f', `${configs}/debian-default.conf`);
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

  it('with -v, prints the configuration in canonical form first', () => {
    const r = smtpd('-n', '-v', '-f', `${configs}/debian-default.conf`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'table aliases file:/etc/aliases',
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
    const r = smtpd('-n', '-v', '-D', 'lan_addr=10.1.2.3', '-f', `${configs}/full.conf`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('listen on 10.1.2.3 tls pki mx.example.org');
  });

  it('reports a missing file', () => {
    const r = smtpd('-n', '-f', `${configs}/nonexistent.conf`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`${configs}/nonexistent.conf: cannot read the configuration: no such file`);
  });

  it('runs the same from bin/smtpd.mjs, the command installed for the examples', () => {
    const r = spawnSync('impl/bin/smtpd.mjs', ['-n', '-f', `${configs}/man-dkim.conf`], { cwd: repo, encoding: 'utf8' });
    expect([r.status, r.stdout]).toEqual([0, 'configuration OK\n']);
  });

  it('without -n, says the daemon is not built yet and exits 2', () => {
    const r = smtpd('-f', `${configs}/debian-default.conf`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not built yet/);
  });
});
