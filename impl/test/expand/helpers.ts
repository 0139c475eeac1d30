/**
 * A small host for expansion tests: a temporary directory with a passwd
 * file, home directories owned by their users, table files, and an
 * Expander built from real smtpd.conf text.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';
import type { Expansion } from '../../src/expand/index.ts';
import { Expander, openActionTables, PasswdFile, readForwardFile, userbaseLookup, type ExpanderOptions } from '../../src/expand/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { Ruleset, type LocalNames, type SessionInfo } from '../../src/lookup/index.ts';

/** The machine the tests pretend to run on. */
export const HOST: LocalNames = { hostname: 'mx.example.org', addresses: ['127.0.0.1', '::1', '192.0.2.25'] };

/** A client on the Internet. */
export const REMOTE: SessionInfo = { local: false, address: '203.0.113.9', rdns: 'client.example.net', helo: 'client.example.net', tls: false };

/** The local enqueuer (sendmail on this host). */
export const SOCKET: SessionInfo = { local: true, helo: 'mx.example.org', tls: false };

/** The accounts of the test host; uids that exist nowhere else, so nothing on the machine owns their files. */
export const USERS = { bob: 52001, alice: 52002, carol: 52003, dave: 52004 } as const;

export const isRoot = process.getuid?.() === 0;

export interface Host {
  /** The temporary directory everything lives in. */
  dir: string;
  /** A path inside it. */
  at(name: string): string;
  /** Writes a file inside it (directories are made as needed) and returns its path. */
  write(name: string, text: string): string;
  /** Writes `user`'s ~/.forward, owned by the user, mode 0644. */
  forward(user: keyof typeof USERS, text: string): string;
  home(user: keyof typeof USERS): string;
}

/**
 * A fresh host per test: passwd with the USERS, each with a home owned by
 * them (mode 0755), removed afterwards. Chown needs root; the tests that
 * depend on ownership are skipped otherwise.
 */
export function testHost(): () => Host {
  let host: Host | undefined;
  beforeEach(() => {
    const dir = mkdtempSync(join(tmpdir(), 'saf-expand-'));
    chmodSync(dir, 0o755);
    const at = (name: string) => join(dir, name);
    const write = (name: string, text: string) => {
      const path = at(name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
      return path;
    };
    const home = (user: keyof typeof USERS) => at(`home/${user}`);
    const passwd = Object.entries(USERS).map(([name, uid]) => `${name}:x:${uid}:${uid}:${name}:${home(name as keyof typeof USERS)}:/bin/sh`);
    write('passwd', `root:x:0:0:root:/root:/bin/bash\n${passwd.join('\n')}\n`);
    for (const [name, uid] of Object.entries(USERS)) {
      const h = home(name as keyof typeof USERS);
      mkdirSync(h, { recursive: true });
      chmodSync(h, 0o755);
      if (isRoot) chownSync(h, uid, uid);
    }
    const forward = (user: keyof typeof USERS, text: string) => {
      const path = join(home(user), '.forward');
      writeFileSync(path, text);
      chmodSync(path, 0o644);
      if (isRoot) chownSync(path, USERS[user], USERS[user]);
      return path;
    };
    host = { dir, at, write, forward, home };
  });
  afterEach(() => {
    if (host) rmSync(host.dir, { recursive: true, force: true });
    host = undefined;
  });
  return () => {
    if (!host) throw new Error('testHost() used outside a test');
    return host;
  };
}

/** What an expansion gave, one line per recipient or one line for the failure. */
export interface Outcome {
  lines: string[];
  expansion: Expansion;
  /** What the expander logged at warn level. */
  warnings: string[];
}

/**
 * Expands `rcpt` with the configuration `conf` (smtpd.conf text, which must
 * be valid) on `host`, with the real ~/.forward reader and the host's passwd.
 */
export async function expand(
  host: Host, conf: string, rcpt: string, session: SessionInfo = REMOTE, options: Partial<ExpanderOptions> = {},
): Promise<Outcome> {
  const { config, errors } = parseConfig(conf, { file: 'smtpd.conf' });
  expect(errors.map(String)).toEqual([]);
  const ruleset = Ruleset.fromConfig(config, { localNames: HOST });
  const tables = openActionTables(config);
  const warnings: string[] = [];
  const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => warnings.push(l.trimEnd()) });
  const expander = new Expander(config, {
    ruleset,
    tables,
    getpwnam: userbaseLookup(new PasswdFile(host.at('passwd'))),
    readForward: readForwardFile,
    log,
    ...options,
  });
  try {
    const expansion = await expander.expand({ session, mailFrom: 'sender@example.net', rcptTo: rcpt });
    return { lines: summarize(expansion, host.dir), expansion, warnings };
  } finally {
    ruleset.close();
    for (const t of tables.values()) t.close();
  }
}

/**
 * An expansion in words, with the temporary directory written `$D`:
 *
 *   staff@example.org -> local: mailbox bob [table aliases, key staff]
 *   carol@gmail.com -> relay
 *   tempfail 451 4.7.0 ...: <x@example.org> | $D/home/bob/.forward line 2: ...
 */
export function summarize(e: Expansion, dir: string): string[] {
  const hide = (s: string) => s.replaceAll(dir, '$D');
  if (e.result !== 'ok') return [hide(`${e.result} ${e.reply} | ${e.log}`)];
  return e.recipients.map(({ recipient, dispatcher, delivery: d }) => {
    const to = `${recipient.user}@${recipient.domain} -> ${dispatcher}`;
    if (!d) return to;
    const what = d.kind === 'mailbox' ? `mailbox ${d.user}` : `${d.kind} ${JSON.stringify(d.target)} as ${d.user}`;
    const sub = d.subaddress === undefined ? '' : ` +${d.subaddress}`;
    const src = d.source ? ` [${d.source.kind}: ${d.source.where}]` : '';
    return hide(`${to}: ${what}${sub}${src}`);
  });
}
