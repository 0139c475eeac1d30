/**
 * The parsed form of smtpd.conf(5).
 *
 * These types are the contract between the configuration parser and every
 * part of the server that reads the configuration: the listener, the rule
 * matcher, the dispatcher. They record what the administrator wrote, with
 * two kinds of processing already done: macros are expanded, and values
 * are converted where the grammar gives them a meaning (a port is a number,
 * a ttl is a number of seconds). Defaults are NOT filled in: a match rule
 * with no `from` criterion has no `from` criterion here, and the code that
 * evaluates rules applies the documented default (`from local`).
 *
 * Every node carries the place it was written, so that any later stage can
 * still point the administrator at the offending line.
 */

/** Where a token or a statement starts: file name, 1-based line and column. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** Something written in the configuration file. */
export interface Node {
  loc: SourceLocation;
}

/**
 * The argument of an option that takes "a value or a table": `from src
 * 10.0.0.0/8` names one value, `from src <trusted>` names a declared table.
 */
export type ValueOrTable =
  | { kind: 'value'; value: string; loc: SourceLocation }
  | { kind: 'table'; name: string; loc: SourceLocation };

/** A delay such as `4d`: the text as written and its length in seconds. */
export interface Duration {
  text: string;
  seconds: number;
}

// ---------------------------------------------------------------------------
// Macros and tables

/** `name = "value"`: a macro defined in the file. */
export interface Macro extends Node {
  kind: 'macro';
  name: string;
  value: string;
}

/** The inline contents of a `table name { ... }` declaration. */
export type TableEntries =
  | { shape: 'list'; values: readonly string[] }
  | { shape: 'mapping'; pairs: readonly { key: string; value: string }[] };

/**
 * `table name [backend:]path` or `table name { ... }`.
 *
 * `backend` is `file` when the path is written without one, and `static`
 * for an inline table. Which shape a file table has (list or mapping) is
 * only known once the file is read, so `entries` is set for inline tables only.
 */
export interface TableDecl extends Node {
  kind: 'table';
  name: string;
  backend: string;
  /** The backend's configuration, usually an absolute path; absent for `getpwnam`. */
  path?: string;
  /** Where the path is written, for errors about the file it names. */
  pathLoc?: SourceLocation;
  entries?: TableEntries;
}

// ---------------------------------------------------------------------------
// Certificates

/** `pki name cert FILE`, `pki name key FILE`, `pki name dhe PARAMS`; several statements may build one pki. */
export interface PkiDecl extends Node {
  kind: 'pki';
  name: string;
  cert?: string;
  key?: string;
  dhe?: 'none' | 'auto' | 'legacy';
  /** Where the file names are written, for errors about the files. */
  certLoc?: SourceLocation;
  keyLoc?: SourceLocation;
}

/** `ca name cert FILE`. */
export interface CaDecl extends Node {
  kind: 'ca';
  name: string;
  cert: string;
  certLoc?: SourceLocation;
}

// ---------------------------------------------------------------------------
// Listeners

/** How a listener offers TLS. `verify` asks clients for a valid certificate. */
export interface ListenTls {
  mode: 'starttls' | 'tls-require' | 'smtps';
  verify: boolean;
}

/** `listen on socket ...` or `listen on INTERFACE ...`. */
export interface ListenDecl extends Node {
  kind: 'listen';
  /** `socket` is the local enqueuer's Unix socket; otherwise an interface, group, address or host name. */
  on: { kind: 'socket' } | { kind: 'interface'; name: string };
  family?: 'inet4' | 'inet6';
  /** Absent means the default for the TLS mode: 465 for smtps, else 25. */
  port?: number;
  tls?: ListenTls;
  pki?: string;
  ca?: string;
  /** `auth [<t>]` (required) or `auth-optional [<t>]`; no table means system passwords. */
  auth?: { required: boolean; table?: string };
  tag?: string;
  hostname?: string;
  hostnames?: string;
  senders?: { table: string; masquerade: boolean };
  /** A filter or chain name, or an inline chain `filter { a, b }`. */
  filter?: string | string[];
  maskSrc: boolean;
  noDsn: boolean;
  receivedAuth: boolean;
  proxyV2: boolean;
}

// ---------------------------------------------------------------------------
// Actions

/** How an action delivers. The first six deliver locally; `relay` sends on over SMTP. */
export type DeliveryMethod =
  | { kind: 'mbox' }
  | { kind: 'maildir'; path?: string; junk: boolean }
  | { kind: 'mda'; command: string }
  | { kind: 'lmtp'; destination: string; rcptTo: boolean }
  | { kind: 'forward-only' }
  | { kind: 'expand-only' }
  | { kind: 'relay' };

/** A table reference that this project may allow to run commands (`| cmd` targets). */
export interface ExpansionSource {
  table: string;
  /** Extension (not in OpenSMTPD 6.8): `allow-exec` written right after it. */
  allowExec: boolean;
}

/** Options of the local delivery methods (everything but relay). */
export interface LocalOptions {
  alias?: ExpansionSource;
  virtual?: ExpansionSource;
  userbase?: string;
  user?: string;
  wrapper?: string;
  ttl?: Duration;
  /**
   * Extension (not in OpenSMTPD 6.8): `forward-file [allow-exec]` turns on
   * ~/.forward processing; `allow-exec` lets it name commands.
   */
  forwardFile?: { allowExec: boolean };
}

/** Options of the `relay` method. */
export interface RelayOptions {
  /** A relay URL `[proto://[label@]]host[:port]`, or a list table of them. */
  host?: ValueOrTable;
  /** `backup` or `backup mx NAME`. */
  backup?: { mx?: string };
  helo?: string;
  heloSrc?: string;
  /** Mapping table: destination domain -> relay URL. */
  domain?: string;
  tls?: { noVerify: boolean };
  auth?: string;
  mailFrom?: string;
  pki?: string;
  ca?: string;
  srs: boolean;
  src?: ValueOrTable;
  filter?: string;
  ttl?: Duration;
}

/** The methods that deliver on this host. */
export type LocalMethod = Exclude<DeliveryMethod, { kind: 'relay' }>;

/** `action "name" METHOD [options]` with a local method. */
export interface LocalAction extends Node {
  kind: 'action';
  name: string;
  method: LocalMethod;
  options: LocalOptions;
}

/** `action "name" relay [options]`. */
export interface RelayAction extends Node {
  kind: 'action';
  name: string;
  method: { kind: 'relay' };
  options: RelayOptions;
}

export type ActionDecl = LocalAction | RelayAction;

/** Tells the two kinds of action apart, so that TypeScript knows which options it has. */
export function isRelay(action: ActionDecl): action is RelayAction {
  return action.method.kind === 'relay';
}

/** `mda wrapper NAME "command"`. */
export interface MdaWrapperDecl extends Node {
  kind: 'mda-wrapper';
  name: string;
  command: string;
}

// ---------------------------------------------------------------------------
// Match rules

/**
 * Each criterion of a match rule, named as it is written. `from ...` says
 * where the session comes from, `for ...` where the envelope goes; the
 * others test the session or the transaction.
 */
export type CriterionKind =
  | 'from any' | 'from local' | 'from socket' | 'from src' | 'from rdns'
  | 'from auth' | 'from mail-from'
  | 'for any' | 'for local' | 'for domain' | 'for rcpt-to'
  | 'tag' | 'helo' | 'tls' | 'auth' | 'mail-from' | 'rcpt-to';

/** One criterion: `[!] kind [regex] [value | <table>]`. */
export interface MatchCriterion extends Node {
  kind: CriterionKind;
  negated: boolean;
  /** The value or table holds regular expressions. */
  regex: boolean;
  /** Absent for criteria without an argument (`from any`, `tls`, bare `auth`). */
  target?: ValueOrTable;
}

/** `match CRITERIA action "name"` or `match CRITERIA reject`. */
export interface MatchRule extends Node {
  kind: 'match';
  /** In the order written. */
  criteria: MatchCriterion[];
  decision: { kind: 'action'; name: string; loc: SourceLocation } | { kind: 'reject' };
}

// ---------------------------------------------------------------------------
// Filters and processes

/** SMTP phases at which a builtin filter can decide. */
export type FilterPhase =
  | 'connect' | 'helo' | 'ehlo' | 'auth' | 'mail-from' | 'rcpt-to' | 'data' | 'commit';

/** The single condition of a builtin filter: `[!] kind [regex] [<table>]`. */
export interface FilterCondition {
  kind: 'fcrdns' | 'rdns' | 'src' | 'helo' | 'auth' | 'mail-from' | 'rcpt-to';
  negated: boolean;
  regex: boolean;
  target?: ValueOrTable;
}

/** What a builtin filter does when its condition holds. */
export type FilterDecision =
  | { kind: 'junk' }
  | { kind: 'bypass' }
  | { kind: 'reject' | 'disconnect'; message: string }
  | { kind: 'rewrite'; value: string }
  | { kind: 'report'; message: string };

/** `user`, `group` and `chroot` for a filter process. */
export interface ProcessOptions {
  user?: string;
  group?: string;
  chroot?: string;
}

/** The four forms of `filter NAME ...`. */
export type FilterDecl = Node & { kind: 'filter'; name: string } & (
    | { type: 'builtin'; phase: FilterPhase; condition: FilterCondition; decision: FilterDecision }
    | { type: 'proc'; proc: string }
    | { type: 'proc-exec'; command: string; process: ProcessOptions }
    | { type: 'chain'; filters: string[] }
  );

/** `proc NAME "command" [user U] [group G] [chroot DIR]`. */
export interface ProcDecl extends Node {
  kind: 'proc';
  name: string;
  command: string;
  process: ProcessOptions;
}

// ---------------------------------------------------------------------------
// Global options

/** A `name number` pair of `smtp limit`, `mda limit` or `scheduler limit`. */
export interface Limit {
  name: string;
  value: number;
}

/** The server-wide settings, each named by the words that introduce it. */
export type GlobalOption = Node & (
  | { kind: 'admd'; authservId: string }
  | { kind: 'bounce warn-interval'; delays: Duration[] }
  | { kind: 'mda limit'; limits: Limit[] }
  | { kind: 'mta max-deferred'; count: number }
  | { kind: 'queue compression' }
  | { kind: 'queue encryption'; key?: string }
  | { kind: 'queue ttl'; ttl: Duration }
  | { kind: 'scheduler limit'; limits: Limit[] }
  | { kind: 'smtp ciphers'; ciphers: string }
  | { kind: 'smtp limit'; limits: Limit[] }
  | { kind: 'smtp max-message-size'; text: string; bytes: number }
  | { kind: 'smtp sub-addr-delim'; delimiter: string }
  | { kind: 'srs key'; secret: string; backup: boolean }
  | { kind: 'srs ttl'; ttl: Duration }
);

/** `include "file"`: recorded where it was written; the file's statements follow it. */
export interface IncludeDecl extends Node {
  kind: 'include';
  path: string;
}

// ---------------------------------------------------------------------------
// The whole file

/** Any statement of the file. */
export type Statement =
  | Macro | TableDecl | PkiDecl | CaDecl | ListenDecl | ActionDecl | MdaWrapperDecl
  | MatchRule | FilterDecl | ProcDecl | IncludeDecl | GlobalOption;

/**
 * A parsed configuration. `statements` holds everything in file order
 * (with included files' statements after their `include`); the other
 * fields give the same objects by kind, which is how the server reads them.
 */
export interface Config {
  statements: Statement[];
  macros: Macro[];
  tables: TableDecl[];
  pkis: PkiDecl[];
  cas: CaDecl[];
  listeners: ListenDecl[];
  actions: ActionDecl[];
  wrappers: MdaWrapperDecl[];
  /** The match rules in order: the first rule that matches an envelope wins. */
  rules: MatchRule[];
  filters: FilterDecl[];
  procs: ProcDecl[];
  options: GlobalOption[];
}

/** An empty configuration, to which the parser adds statements. */
export function emptyConfig(): Config {
  return {
    statements: [], macros: [], tables: [], pkis: [], cas: [], listeners: [], actions: [],
    wrappers: [], rules: [], filters: [], procs: [], options: [],
  };
}
