/**
 * The data of the table subsystem: what a table holds, what it can be asked,
 * and what each question answers.
 *
 * A table is either a list (a set of values) or a mapping (keys with a value
 * each), as table(5) puts it. The daemon never reads a table directly: it
 * asks a *service* — "is this domain in the table?", "what are the aliases
 * of this user?" — and the service decides how a key is compared with the
 * entries and how the value found is read. The services are OpenSMTPD's
 * `enum table_service` (smtpd.h), named in lower case.
 */

/** A list holds keys only; a mapping holds a value under each key. */
export type TableShape = 'list' | 'mapping';

/** One entry as a backend stores it. `value` is absent in a list. */
export interface TableEntry {
  /** The key as written in the source (lookups compare it case-insensitively). */
  key: string;
  value?: string;
  /** The line the entry starts on in its file, for error messages. */
  line?: number;
}

/** Where an alias or a virtual user delivers, one per comma-separated value (aliases(5)). */
export type AliasTarget =
  | { kind: 'username'; user: string }
  | { kind: 'address'; user: string; domain: string }
  | { kind: 'file'; path: string }
  | { kind: 'command'; command: string }
  | { kind: 'include'; path: string }
  | { kind: 'error'; code: number; message: string };

/**
 * A credentials entry. In a listener's `auth <table>` the key is the user
 * and `password` is a crypt(3) hash made by `smtpctl encrypt`; in a relay's
 * `auth <table>` the key is a label and the value `user:password` holds the
 * clear password sent to the remote host.
 */
export interface Credentials {
  user: string;
  password: string;
}

/** A virtual user mapped onto a system account (`userbase <table>`). */
export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** An IPv4 or IPv6 network: the address bytes and how many leading bits count. */
export interface NetAddr {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Prefix length: 32 or 128 for a single address. */
  bits: number;
}

/** A local address to send from (`relay src <table>`). */
export interface SourceAddress {
  family: 4 | 6;
  /** The address as written, without `ipv6:` prefix, brackets or scope. */
  address: string;
  /** The IPv6 scope after `%`, if any (an interface name or number). */
  scope?: string;
}

/** A local address and the hostname to announce from it (`hostnames <table>`, `helo-src <table>`). */
export interface AddrName extends SourceAddress {
  name: string;
}

/** A mail address split at its last `@`; either part may be empty in a table entry. */
export interface MailAddr {
  user: string;
  domain: string;
}

/** How a relay URL asks for TLS: the schemes of smtpd.conf(5)'s `relay host`. */
export type RelayTls = 'opportunistic' | 'starttls' | 'none' | 'smtps';

/** A relay URL such as `smtp+tls://label@mx.example.org:587`. */
export interface RelayHost {
  scheme: 'smtp' | 'smtp+tls' | 'smtp+notls' | 'lmtp' | 'smtps';
  tls: RelayTls;
  /** A hostname, or an address in brackets. */
  host: string;
  port: number;
  /** The label of the credentials to use, from `label@host`. */
  authLabel?: string;
}

/**
 * Every service and the type its lookup returns. The key type is always a
 * string; the comment says what the caller passes.
 */
export interface LookupResults {
  /** Key: a user, `user@domain`, `@domain` or `@`. Value: aliases(5) targets. */
  alias: AliasTarget[];
  /** Key: a domain or HELO name, matched against wildcard entries. */
  domain: string;
  /** Key: a user name (listener) or a label (relay). */
  credentials: Credentials;
  /** Key: an address, `a.b.c.d` or `[v6]`, matched against networks. */
  netaddr: NetAddr;
  /** Key: a virtual user name. */
  userinfo: UserInfo;
  /** Fetched in turn, not looked up: the next source address to use. */
  source: SourceAddress;
  /** Key: `user@domain`, matched against `user`, `@domain`, `user@domain` entries. */
  mailaddr: MailAddr;
  /** Key: an authenticated user. Value: the sender addresses it may use. */
  mailaddrmap: MailAddr[];
  /** Key: a destination domain; or fetched in turn from a list. */
  relayhost: RelayHost;
  /** Key: a local address. Value: the hostname for it. */
  addrname: AddrName;
  /** Key: any string, compared exactly (tags, user names). */
  string: string;
  /** Key: any string, tested against each entry as a regular expression. */
  regex: string;
}

export type Service = keyof LookupResults;

export const SERVICES: readonly Service[] = [
  'alias', 'domain', 'credentials', 'netaddr', 'userinfo', 'source',
  'mailaddr', 'mailaddrmap', 'relayhost', 'addrname', 'string', 'regex',
];

/** The services a rule asks as yes/no questions (`match ... <table>`). */
export type SetService = 'domain' | 'netaddr' | 'mailaddr' | 'string' | 'regex';

/** The services answered by handing out entries in turn rather than by key. */
export type FetchService = 'source' | 'relayhost';

/**
 * A table that cannot answer: a bad file, a malformed entry, a service the
 * backend does not provide. Callers turn it into a temporary failure, as
 * OpenSMTPD turns a lookup that returns -1 into a 4xx reply.
 */
export class TableError extends Error {
  override readonly name = 'TableError';
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file === undefined ? message : `${file}${line === undefined ? '' : `:${line}`}: ${message}`);
  }
}
