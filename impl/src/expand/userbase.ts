/**
 * Who the local users are: getpwnam(3) for the system's accounts, or an
 * action's `userbase <table>` for virtual users. OpenSMTPD asks both
 * through one table service (K_USERINFO; table_getpwnam.c for the system),
 * and expansion asks once per local user, to refuse unknown ones at RCPT
 * time rather than bounce them later.
 *
 * Node has no binding to getpwnam(3), so the system's accounts are read
 * from /etc/passwd. Accounts that live only in NSS sources other than
 * files (LDAP, systemd-homed) are not seen.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import type { Config } from '../config/index.ts';
import type { UserRecord } from '../delivery/types.ts';
import { openTable, tableSource, type Table } from '../table/index.ts';

// #region parse-passwd
/**
 * Reads a passwd(5) file into accounts by name. Lines that are blank,
 * comments, NIS compat entries (`+`, `-`) or malformed are skipped; when a
 * name appears twice the first entry wins, as it does for getpwnam(3).
 */
export function parsePasswd(text: string): Map<string, UserRecord> {
  const users = new Map<string, UserRecord>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    if (fields.length < 7) continue;
    const [name = '', , uid = '', gid = '', , home = '', shell = ''] = fields;
    if (name === '' || !/^\d+$/.test(uid) || !/^\d+$/.test(gid) || users.has(name)) continue;
    users.set(name, { name, uid: Number(uid), gid: Number(gid), home, ...(shell !== '' && { shell }) });
  }
  return users;
}
// #endregion parse-passwd

/**
 * The system's accounts, read from a passwd file and read again when it
 * changes: a user added with useradd can receive mail at once, without a
 * restart. Each lookup costs one stat(2); the file is read only when its
 * modification time, size or inode differ from the last read.
 */
export class PasswdFile {
  private users = new Map<string, UserRecord>();
  private seen: Pick<Stats, 'mtimeMs' | 'size' | 'ino'> | undefined;

  constructor(readonly path = '/etc/passwd') {}

  /** The account named `name` (names are compared exactly), or undefined. Throws if the file cannot be read. */
  lookup(name: string): UserRecord | undefined {
    this.refresh();
    return this.users.get(name);
  }

  private refresh(): void {
    const st = statSync(this.path);
    const seen = this.seen;
    if (seen && seen.mtimeMs === st.mtimeMs && seen.size === st.size && seen.ino === st.ino) return;
    this.users = parsePasswd(readFileSync(this.path, 'utf8'));
    this.seen = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
  }
}

/** The lookup expansion is given: a name, and the action's `userbase` table if it has one. */
export type Getpwnam = (name: string, userbase?: Table) => UserRecord | undefined | Promise<UserRecord | undefined>;

/**
 * getpwnam for expansion and delivery. With a table, the table's
 * `userinfo` entry for the name (`uid:gid:home`), which has no shell; a
 * table that cannot answer throws TableError, which the caller turns into
 * a temporary failure. Without one, the system's account.
 */
export function userbaseLookup(passwd: PasswdFile = systemPasswd()): Getpwnam {
  return (name, userbase) => (userbase ? fromTable(userbase, name) : passwd.lookup(name));
}

function fromTable(table: Table, name: string): UserRecord | undefined {
  const info = table.lookup('userinfo', name);
  return info && { name: info.name, uid: info.uid, gid: info.gid, home: info.home };
}

/** One action's userbase, for whoever needs accounts outside expansion (the dispatcher, at delivery time). */
export interface Userbase {
  /** The account, or undefined if there is none; throws if the userbase cannot answer. */
  get(name: string): UserRecord | undefined;
  close(): void;
}

/**
 * The userbase named `table` in `config` (an action's `userbase <table>`),
 * opened; the system's accounts when `table` is undefined or is declared
 * `getpwnam`. Throws TableError if the table cannot be opened.
 */
export function openUserbase(config: Config, table?: string): Userbase {
  const decl = table === undefined ? undefined : config.tables.find((t) => t.name === table);
  if (table !== undefined && !decl) throw new Error(`no table named ${table}`);
  if (!decl || decl.backend === 'getpwnam') {
    const passwd = systemPasswd();
    return { get: (name) => passwd.lookup(name), close: () => undefined };
  }
  const opened = openTable(decl.name, tableSource(decl));
  return { get: (name) => fromTable(opened, name), close: () => opened.close() };
}

let shared: PasswdFile | undefined;

/** /etc/passwd, read once for the whole process and again when it changes. */
function systemPasswd(): PasswdFile {
  return (shared ??= new PasswdFile());
}
