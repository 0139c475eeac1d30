/**
 * The checks that read the disk: the files a configuration names must be
 * there when the server starts, so `smtpd -n` opens them now rather than
 * let the daemon fail later.
 *
 * - A table stored in a file (`file:`, `db:`, `regex:`, or a bare path)
 *   must be readable, and a text table must be a list or a mapping of the
 *   shape its uses need. OpenSMTPD 6.8 reads them too, and refuses the file.
 *   A `db:` file must be one this server's makemap wrote (its header gives
 *   the shape), and every pattern of a `regex:` table must compile: the
 *   daemon would refuse to start on either, so the check says so first.
 * - A pki's certificate and a ca's certificate must be readable and hold
 *   a certificate; a pki's key must be readable, private to its owner,
 *   owned by root (or by the user running the check), hold a private key,
 *   and be the key of that certificate.
 *
 * - A listener's `auth` must name a credentials table: without one it
 *   names the system's password database, which this smtpd cannot read
 *   (see authWithoutTable).
 *
 * OpenSMTPD 6.8 checks the key the same way, and only reads the
 * certificates; parsing them, and checking that key and certificate
 * belong together, are ours, and so is the refusal of `auth` without a
 * table, which 6.8 accepts.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readDbHeader, shapeOf, type DbKind } from '../table/db-format.ts';
import { EntryStore } from '../table/entry-store.ts';
import { parseTableFile } from '../table/file-format.ts';
import type { Config, SourceLocation } from './ast.ts';
import { checkFileTableShapes } from './check.ts';
import { ConfigError } from './errors.ts';

/** How the checks reach the disk; tests give their own. */
export interface FileAccess {
  read(path: string): Buffer;
  stat(path: string): { mode: number; uid: number };
  /** The user running the check, who may own the keys as well as root. */
  uid: number;
}

export const diskAccess: FileAccess = {
  read: (path) => readFileSync(path),
  stat: (path) => statSync(path),
  uid: process.getuid?.() ?? 0,
};

/** Table backends whose path is a file on this host. */
const FILE_BACKENDS = new Set(['file', 'db', 'regex', 'static']);

export function checkFiles(config: Config, fs: FileAccess = diskAccess): ConfigError[] {
  const errors: ConfigError[] = [...authWithoutTable(config)];
  const read = (path: string, loc: SourceLocation, what: string): Buffer | undefined => {
    try {
      return fs.read(path);
    } catch (e) {
      errors.push(new ConfigError(loc, `cannot read ${what} "${path}": ${reason(e)}`,
        'check the path, and that the file exists and is readable by root'));
      return undefined;
    }
  };

  // A text table is read as the server will read it, which also tells whether it is a list or a mapping.
  const shapes = new Map<string, 'list' | 'mapping'>();
  for (const t of config.tables) {
    if (t.path === undefined || !FILE_BACKENDS.has(t.backend)) continue;
    const text = read(t.path, t.pathLoc ?? t.loc, `the file of table ${t.name}`);
    if (text && t.backend === 'db') {
      const kind = dbKind(text, t.path, t.pathLoc ?? t.loc, t.name, errors);
      if (kind) shapes.set(t.name, shapeOf(kind));
    }
    if (text && t.backend === 'regex') regexTable(text, t.path, t.pathLoc ?? t.loc, t.name, errors);
    if (!text || (t.backend !== 'file' && t.backend !== 'static')) continue;
    try {
      shapes.set(t.name, parseTableFile(text.toString('utf8'), t.path).shape);
    } catch (e) {
      errors.push(new ConfigError(t.pathLoc ?? t.loc, `table ${t.name}: ${(e as Error).message}`,
        'a table file is a list (one value per line) or a mapping (key and value on each line), as its first entry decides'));
    }
  }
  errors.push(...checkFileTableShapes(config, shapes));
  for (const ca of config.cas) {
    const text = read(ca.cert, ca.certLoc ?? ca.loc, `the certificate of ca ${ca.name}`);
    if (text) certificate(text, ca.cert, ca.certLoc ?? ca.loc, errors);
  }
  // A pki may be spread over several statements: check each file where it is named.
  const certs = new Map<string, X509Certificate>();
  const keys: { name: string; key: KeyObject; path: string; loc: SourceLocation }[] = [];
  for (const p of config.pkis) {
    if (p.cert !== undefined) {
      const text = read(p.cert, p.certLoc ?? p.loc, `the certificate of pki ${p.name}`);
      const cert = text && certificate(text, p.cert, p.certLoc ?? p.loc, errors);
      if (cert) certs.set(p.name, cert);
    }
    if (p.key !== undefined) {
      const loc = p.keyLoc ?? p.loc;
      const text = read(p.key, loc, `the key of pki ${p.name}`);
      const key = text && privateKey(text, p.key, loc, fs, errors);
      if (key) keys.push({ name: p.name, key, path: p.key, loc });
    }
  }
  for (const { name, key, path, loc } of keys) {
    const cert = certs.get(name);
    if (cert && !cert.checkPrivateKey(key)) {
      errors.push(new ConfigError(loc, `the key "${path}" does not belong to the certificate of pki ${name}`,
        'a certificate and its key are made together; name the key file that was created with this certificate'));
    }
  }
  return errors;
}

/**
 * `listen on ... auth` (or `auth-optional`) without a table: OpenSMTPD
 * 6.8 then checks the system's password database (getpwnam(3) and
 * crypt(3), or PAM, in its parent process). This smtpd has no way to
 * read it, so such a listener is an error, naming the listener and what
 * to write instead, for `smtpd -n` and for the daemon at start alike. The
 * other choice, starting and answering every AUTH with 454, would hide
 * the mistake behind a temporary failure that clients retry for days,
 * and the administrator who wrote `auth` expects users to log in.
 */
export function authWithoutTable(config: Config): ConfigError[] {
  return config.listeners.flatMap(({ auth, loc }) => {
    if (auth === undefined || auth.table !== undefined) return [];
    const keyword = auth.required ? 'auth' : 'auth-optional';
    return [new ConfigError(loc, `"${keyword}" without a table would check the system's passwords, which this smtpd cannot read`,
      `name a credentials table, as in \`${keyword} <creds>\` with \`table creds file:/etc/mail/creds\` holding ` +
        '"user hash" lines, each hash made by `smtpctl encrypt`')];
  });
}

/**
 * The kind of a `db:` table's file, read from its header as the server
 * will read it. The usual mistake is a file from OpenSMTPD's makemap,
 * which writes Berkeley DB: the hint says which makemap to run.
 */
function dbKind(bytes: Buffer, path: string, loc: SourceLocation, table: string, errors: ConfigError[]): DbKind | undefined {
  try {
    return readDbHeader(bytes, bytes.length, path).kind;
  } catch (e) {
    const message = (e as Error).message.replace(`${path}: `, '');
    errors.push(new ConfigError(loc, `table ${table}: "${path}": ${message}`,
      'build it from its source file with this server\'s makemap (OpenSMTPD\'s makemap writes Berkeley DB files, ' +
        `which this server does not read), e.g. ${path.endsWith('.db') ? `makemap ${path.slice(0, -3)}` : `makemap -o ${path} SOURCE`}`));
    return undefined;
  }
}

/** A `regex:` table: every pattern compiled, as the server compiles them when it opens the table. */
function regexTable(text: Buffer, path: string, loc: SourceLocation, table: string, errors: ConfigError[]): void {
  try {
    new EntryStore('list', parseTableFile(text.toString('utf8'), path, 'list').entries, path).patterns();
  } catch (e) {
    errors.push(new ConfigError(loc, `table ${table}: ${(e as Error).message}`,
      'each line of a regex table is one POSIX extended regular expression, as grep -E reads them'));
  }
}

/** The first certificate of a PEM file (a chain starts with the server's own). */
function certificate(text: Buffer, path: string, loc: SourceLocation, errors: ConfigError[]): X509Certificate | undefined {
  try {
    return new X509Certificate(text);
  } catch {
    errors.push(new ConfigError(loc, `"${path}" does not hold a certificate`,
      'a certificate file is PEM text that starts with -----BEGIN CERTIFICATE-----'));
    return undefined;
  }
}

// #region check-key-file
/**
 * A private key is the one secret the server's identity rests on. As
 * OpenSMTPD does, refuse a key file that others could read or change
 * (group may read it, nothing more), or that someone other than root
 * owns: whoever can rewrite it can impersonate the server. We also accept
 * the user running the check as owner, so that tests and development
 * copies work without root.
 */
function privateKey(text: Buffer, path: string, loc: SourceLocation, fs: FileAccess, errors: ConfigError[]): KeyObject | undefined {
  const { mode, uid } = fs.stat(path);
  if ((mode & 0o027) !== 0) {
    errors.push(new ConfigError(loc, `the key "${path}" is open to others (mode ${(mode & 0o777).toString(8)})`,
      `a key may be readable by its group at most: chmod 600 ${path}`));
    return undefined;
  }
  if (uid !== 0 && uid !== fs.uid) {
    errors.push(new ConfigError(loc, `the key "${path}" is owned by uid ${uid}, not by root`, `chown root ${path}`));
    return undefined;
  }
  try {
    return createPrivateKey(text);
  } catch {
    errors.push(new ConfigError(loc, `"${path}" does not hold a private key`,
      'a key file is PEM text that starts with -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY); was the certificate named instead?'));
    return undefined;
  }
}
// #endregion check-key-file

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a directory' : code ?? String(e);
}
