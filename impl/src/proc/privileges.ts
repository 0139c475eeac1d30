/**
 * Who each child runs as: the accounts, found or created. How a child
 * becomes that user is in spawn.ts.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import type { Logger } from '../log/index.ts';
import { ACCOUNTS } from './processes.ts';

export interface Credentials {
  user: string;
  uid: number;
  gid: number;
}

/** The account's entry in the user database (getent, so NSS sources count), or undefined. */
export function lookupUser(name: string): Credentials | undefined {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const [user, , uid, gid] = line.trim().split(':');
  if (user === undefined || uid === undefined || gid === undefined) return undefined;
  return { user, uid: Number(uid), gid: Number(gid) };
}

/**
 * The account, created if it is missing: a system user with its own
 * group, no home and no shell, like the _smtpd and _smtpq that
 * OpenSMTPD's packages create at install time.
 */
export function ensureSystemUser(name: string, log: Logger): Credentials {
  const found = lookupUser(name);
  if (found) return found;
  execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/var/empty', '--shell', '/usr/sbin/nologin', name], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  log.info(`info: created system user ${name}`);
  const created = lookupUser(name);
  if (!created) throw new Error(`useradd ${name} succeeded but the user cannot be found`);
  return created;
}

export function currentCredentials(): Credentials {
  const me = userInfo();
  return { user: me.username, uid: me.uid, gid: me.gid };
}

export interface Accounts {
  smtpd: Credentials;
  smtpq: Credentials;
  /** True when the children run as other users than the parent. */
  separated: boolean;
}

/**
 * As root, the children run as _smtpd, and the queue as _smtpq. Started
 * by anyone else, the daemon cannot change users, so the same processes
 * run as that user: the split still isolates crashes and keeps each
 * process's memory its own, but no longer guards the spool from smtp.
 */
export function resolveAccounts(log: Logger): Accounts {
  if (process.getuid?.() !== 0) {
    const me = currentCredentials();
    log.debug(`debug: not running as root: every process runs as ${me.user}`);
    return { smtpd: me, smtpq: me, separated: false };
  }
  return { smtpd: ensureSystemUser(ACCOUNTS.smtpd, log), smtpq: ensureSystemUser(ACCOUNTS.smtpq, log), separated: true };
}
