/**
 * Making the spool ready for the queue process, which alone uses it.
 */
import { lchown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from '../log/index.ts';
import type { Accounts } from '../proc/privileges.ts';

/** The spool when the command line does not give one: OpenSMTPD's as root, one under the current directory otherwise. */
export function defaultSpoolDir(): string {
  return process.getuid?.() === 0 ? '/var/spool/smtpd' : resolve('var/spool');
}

/**
 * The spool belongs to the queue's user, mode 0700: only the queue
 * process can list, read or write queued mail. (OpenSMTPD keeps the spool
 * root owned by root and gives each subdirectory to _smtpq; here the
 * queue backend creates and empties its subdirectories itself, which
 * needs the root directory to be its own.) A spool left by an earlier run
 * as another user is given to the queue's user, file by file. Every
 * directory above the spool must let that user through, or the queue
 * would fail later with a bare EACCES; this says so now.
 */
export async function prepareSpool(spool: string, accounts: Accounts, log: Logger): Promise<void> {
  await mkdir(spool, { recursive: true, mode: 0o700 });
  if (!accounts.separated) return;
  const { uid, gid, user } = accounts.smtpq;
  const info = await stat(spool);
  if (info.uid !== uid || info.gid !== gid) {
    log.info(`info: giving the spool ${spool} to ${user}`);
    await chownTree(spool, uid, gid);
  }
  for (let dir = dirname(resolve(spool)); ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(`the spool ${spool} is not reachable by ${user}: ${dir} has mode ${(mode & 0o777).toString(8)} (it needs o+x)`);
    }
    if (dir === dirname(dir)) break;
  }
}

/**
 * lchown, never chown: a link planted in the spool by a compromised queue
 * must not make root give away the file it points to.
 */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  if (!(await lstat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}
