/**
 * What "local" means to a match rule: the names and addresses of this
 * machine. OpenSMTPD computes them once at start-up (set_local() and
 * set_localaddrs() in config.c) and stores them in four tables with
 * reserved names, which `from local`, `from any`, `for local` and
 * `for any` then consult like any table a user declares.
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { isIPv6 } from 'node:net';
import type { TableEntry } from '../table/index.ts';

/** This machine, as the rules see it. Tests pass their own; the server asks the system. */
export interface LocalNames {
  /** The server's own name, as in its greeting. */
  hostname: string;
  /** The addresses of the machine's interfaces, as text: `127.0.0.1`, `::1`, `192.0.2.25`. */
  addresses: readonly string[];
}

/**
 * The names of the machine this runs on. Like getmailname() (util.c),
 * the first line of /etc/mail/mailname wins over the system's host name;
 * unlike it, a short host name is not completed through DNS, because
 * this is computed synchronously, before any resolver is set up.
 */
export function systemLocalNames(): LocalNames {
  let hostname = osHostname();
  try {
    const first = readFileSync('/etc/mail/mailname', 'utf8').split('\n')[0]?.trim();
    if (first) hostname = first;
  } catch {
    // no mailname file: keep the host name
  }
  const addresses = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((info) => info.address);
  return { hostname, addresses };
}

// #region local-tables
/**
 * The four reserved tables, filled as config.c fills them:
 *
 *   <anyhost>         from any     `local` and every IPv4 and IPv6 network
 *   <localhost>       from local   `local` and each address of the machine
 *   <anydestination>  for any      `*`, which matches every domain
 *   <localnames>      for local    `localhost`, the server's name, and each
 *                                  address of the machine, bare and as a
 *                                  domain literal (`[192.0.2.25]`)
 *
 * `from local` is not "127.0.0.0/8": it is the Unix socket plus the exact
 * addresses this machine has, so a client connecting to the server's
 * public address from the server itself is local too, and a neighbour on
 * the same network is not.
 */
export function localTables(names: LocalNames): Record<string, TableEntry[]> {
  const list = (keys: string[]): TableEntry[] =>
    [...new Map(keys.map((k) => [k.toLowerCase(), k])).values()].map((key) => ({ key }));
  const asSource = (a: string) => (isIPv6(a) ? `[${a}]` : a);
  const asDomain = (a: string) => (isIPv6(a) ? [`[${a}]`, `[ipv6:${a}]`] : [a, `[${a}]`]);
  return {
    '<anyhost>': list(['local', '0.0.0.0/0', '::/0']),
    '<localhost>': list(['local', ...names.addresses.map(asSource)]),
    '<anydestination>': list(['*']),
    '<localnames>': list(['localhost', names.hostname, ...names.addresses.flatMap(asDomain)]),
  };
}
// #endregion local-tables
