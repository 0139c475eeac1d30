/** A private Dovecot with only LMTP, on 127.0.0.1, for the tests of the `lmtp` method. */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './helpers.ts';

const NOBODY = 65534;

/** Whether Debian's dovecot-lmtpd is installed. */
export const haveDovecot = existsSync('/usr/sbin/dovecot');

async function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts Dovecot storing mail for any user under dir/home/<user>/Maildir
 * as nobody, and waits until its LMTP port takes connections. The caller
 * stops the process it returns, with stopDovecot.
 */
export async function startDovecot(dir: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub), { recursive: true });
  chownSync(join(dir, 'home'), NOBODY, NOBODY);
  writeFileSync(join(dir, 'dovecot.conf'), [
    `base_dir = ${dir}/run`, `state_dir = ${dir}/state`, `log_path = ${dir}/dovecot.log`,
    'protocols = lmtp', 'ssl = no', 'listen = 127.0.0.1',
    `mail_location = maildir:${dir}/home/%n/Maildir`,
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'userdb {', '  driver = static', `  args = uid=${NOBODY} gid=${NOBODY} home=${dir}/home/%n allow_all_users=yes`, '}',
    'service lmtp {', '  inet_listener lmtp {', '    address = 127.0.0.1', `    port = ${port}`, '  }', '}', '',
  ].join('\n'));
  const proc = spawn('/usr/sbin/dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
  try {
    await listening(port, 10_000);
  } catch (e) {
    proc.kill('SIGTERM');
    throw e;
  }
  return { port, proc };
}

/**
 * Stops Dovecot and waits until it has exited: it writes to its state
 * directory as it goes, so a test that removed the directory right after
 * the signal could fail with ENOTEMPTY. SIGKILL after five seconds.
 */
export async function stopDovecot(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const late = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(late);
}
