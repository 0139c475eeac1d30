import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { smtpctl, type CtlIo } from '../../src/cli/smtpctl.ts';
import { verifyPassword } from '../../src/crypto/password.ts';
import { pythonCrypt, pythonCryptAll } from './helpers.ts';

/** Runs smtpctl with `stdin` given in `chunks`; returns the status and what it wrote. */
async function run(argv: string[], chunks: string[] = []): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CtlIo = {
    stdin: (async function* () {
      for (const chunk of chunks) yield Buffer.from(chunk, 'latin1');
    })(),
    stdout: (text) => (out += text),
    stderr: (text) => (err += text),
  };
  const status = await smtpctl(argv, io);
  return { status, out, err };
}

const HASH = /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/;

describe('smtpctl encrypt', () => {
  it('hashes its argument with SHA-512-crypt and a random salt', async () => {
    const { status, out, err } = await run(['encrypt', 'secret']);
    expect([status, err]).toEqual([0, '']);
    const hash = out.trimEnd();
    expect(hash).toMatch(HASH);
    expect(verifyPassword('secret', hash)).toBe(true);
  });

  it('hashes each line of standard input, as getline(3) splits it', async () => {
    const { status, out } = await run(['encrypt'], ['one\ntw', 'o\r\n\nlast']);
    expect(status).toBe(0);
    const hashes = out.split('\n').slice(0, -1);
    expect(hashes).toHaveLength(4);
    hashes.forEach((h) => expect(h).toMatch(HASH));
    expect(hashes.map((h, i) => verifyPassword(['one', 'two\r', '', 'last'][i]!, h))).toEqual([true, true, true, true]);
  });

  it('prints nothing for empty input', async () => {
    expect(await run(['encrypt'], [])).toEqual({ status: 0, out: '', err: '' });
  });

  it.skipIf(!pythonCrypt)("writes hashes that Python's crypt (libxcrypt) verifies", async () => {
    const passwords = ['secret', 'pässwörd', 'with space', '-x', ''];
    const hashes: string[] = [];
    for (const p of passwords) hashes.push((await run(['encrypt', p])).out.trimEnd());
    expect(pythonCryptAll(passwords.map((p, i) => [p, hashes[i]!]))).toEqual(hashes);
  });

  it.skipIf(!existsSync('/usr/sbin/smtpctl'))("verifies what Debian's smtpctl encrypt prints now", () => {
    const debian = execFileSync('/usr/sbin/smtpctl', ['encrypt', 'secret'], { encoding: 'utf8' }).trimEnd();
    expect(debian).toMatch(HASH);
    expect(verifyPassword('secret', debian)).toBe(true);
  });
});

describe('smtpctl command line', () => {
  it('accepts a word shortened to a unique prefix', async () => {
    expect((await run(['enc', 'secret'])).out).toMatch(/^\$6\$/);
  });

  it('lists the possibilities for an unknown or missing command', async () => {
    for (const argv of [[], ['bogus']]) {
      expect(await run(argv)).toEqual({ status: 255, out: '', err: 'possibilities are:\nencrypt\n' });
    }
  });

  it('refuses extra arguments', async () => {
    expect(await run(['encrypt', 'a', 'b'])).toEqual({ status: 255, out: '', err: 'invalid command\n' });
  });

  it('runs from bin/smtpctl.mjs, reading standard input', () => {
    const bin = fileURLToPath(new URL('../../bin/smtpctl.mjs', import.meta.url));
    const result = spawnSync(process.execPath, [bin, 'encrypt'], { input: 'secret\n', encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(verifyPassword('secret', result.stdout.trimEnd())).toBe(true);
  });
});
