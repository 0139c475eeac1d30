/**
 * A descriptor the daemon inherited open (a job runner's pipe, a shell's
 * redirection) must not reach the commands it runs as mail users.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, smtpdBin, startDaemon, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('descriptors smtpd inherited', { timeout: 60_000 }, () => {
  it('are closed at start, and never reach an mda command', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const out = join(dir, 'out');
    mkdirSync(out);
    chmodSync(out, 0o1777);
    writeFileSync(conf, [
      `listen on 127.0.0.1 port ${port}`,
      `action "mda" mda "cat > /dev/null; ls -l /proc/$$/fd > ${out}/fds"`,
      'match from any for domain "example.org" action "mda"',
      '',
    ].join('\n'));
    // The daemon gets a root-owned file open for appending as its fd 42,
    // as if a script had started it with 42>>/var/log/something: a shell's
    // redirection survives exec. (Node marks its lowest few inherited
    // descriptors close-on-exec as it starts, hence one higher up.)
    const secret = join(dir, 'root-only.log');
    writeFileSync(secret, '', { mode: 0o600 });
    const daemon = startDaemon(['-d', '-v', '-f', conf, '--spool', spool], {},
      ['bash', '-c', 'exec 42>>"$0" && exec "$@"', secret, process.execPath, smtpdBin]);
    running.push(daemon);
    await daemon.waitFor(/processes started/);

    execFileSync('python3', ['-c', `
import smtplib
with smtplib.SMTP('127.0.0.1', ${port}, timeout=30) as s:
    s.sendmail('alice@example.net', ['nobody@example.org'], b'Subject: fds\\r\\n\\r\\nhello\\r\\n')
`], { timeout: 30_000 });
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*result=Ok stat=Delivered/, 20_000);
    // The shell's own (its saved stdout while a redirection lasts) may be
    // there; what smtpd was given may not.
    const fds = readFileSync(join(out, 'fds'), 'utf8');
    expect(fds).toMatch(/ 0 -> /);
    expect(fds).not.toMatch(/ 42 -> /);
    expect(fds).not.toContain('root-only.log');
    expect(daemon.lines.some((l) => /closed descriptors? (\d+, )*42(, \d+)*, inherited from what started smtpd/.test(l))).toBe(true);
  });
});
