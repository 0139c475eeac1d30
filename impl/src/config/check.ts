/**
 * The checks that need the whole file: every name a statement uses (a
 * table, an action, a filter...) must be declared, once, and before it is
 * used; tables must have the shape their use needs; a few settings need
 * others (a relay with `srs` needs an `srs key`).
 *
 * The parser has already read every statement it could. These checks only
 * read the Config, which keeps the parser about grammar and this file
 * about meaning.
 */
import { type Config, isRelay, type SourceLocation, type Statement, type TableDecl, type ValueOrTable } from './ast.ts';
import { ConfigError, closestWord } from './errors.ts';

/** The kinds of names a configuration declares and uses. */
type NameKind = 'table' | 'action' | 'filter' | 'proc' | 'mda wrapper' | 'pki' | 'ca';

/** A use of a name, and for a table, the shape of table the use needs. */
interface Use {
  kind: NameKind;
  name: string;
  loc: SourceLocation;
  /** How the table is used, for messages ("the alias table"). */
  role?: string;
  shape?: 'list' | 'mapping';
}

/** How to declare a missing name, for hints. */
const EXAMPLE: Record<NameKind, (name: string) => string> = {
  table: (n) => `table ${n} file:/etc/mail/${n}`,
  action: (n) => `action "${n}" maildir`,
  filter: (n) => `filter "${n}" proc-exec "filter-${n}"`,
  proc: (n) => `proc "${n}" "/usr/local/libexec/${n}"`,
  'mda wrapper': (n) => `mda wrapper ${n} "/usr/local/bin/${n} %{mda}"`,
  pki: (n) => `pki ${n} cert "/etc/ssl/${n}.crt"`,
  ca: (n) => `ca ${n} cert "/etc/ssl/${n}-ca.crt"`,
};

export function checkConfig(config: Config, file: string, broken: ReadonlySet<string>): ConfigError[] {
  const errors: ConfigError[] = [];
  // Where each name is first declared, anywhere in the file, to tell "too late" from "never".
  const everywhere = new Map<string, SourceLocation>();
  for (const st of config.statements) {
    for (const d of declarations(st)) if (!everywhere.has(d)) everywhere.set(d, st.loc);
  }
  const declared = new Map<string, SourceLocation>();
  const tables = new Map<string, TableDecl>();
  for (const st of config.statements) {
    for (const use of uses(st)) {
      const error = checkReference(use, declared, everywhere, broken) ?? checkShape(use, tables);
      if (error) errors.push(error);
    }
    for (const d of declarations(st)) {
      const earlier = declared.get(d);
      if (earlier && st.kind !== 'pki') {
        const [kind, name] = [d.slice(0, d.lastIndexOf(' ')), d.slice(d.lastIndexOf(' ') + 1)];
        errors.push(new ConfigError(st.loc, `${kind} "${name}" is already declared, at ${where(earlier, st.loc)}`, 'names must be unique; rename one of them'));
      } else if (!earlier) {
        declared.set(d, st.loc);
      }
    }
    if (st.kind === 'table') tables.set(st.name, st);
  }
  errors.push(...checkChains(config), ...checkPkis(config), ...checkSettings(config, file, broken));
  return errors;
}

// #region check-reference
/**
 * A name must be declared before the line that uses it, as in OpenSMTPD,
 * whose parser looks a table or an action up the moment it reads the name.
 * When it is declared further down, say where; when it is not declared at
 * all, suggest the closest declared name, or show how to declare it.
 */
function checkReference(
  use: Use,
  declared: ReadonlyMap<string, SourceLocation>,
  everywhere: ReadonlyMap<string, SourceLocation>,
  broken: ReadonlySet<string>,
): ConfigError | undefined {
  const key = `${use.kind} ${use.name}`;
  if (declared.has(key) || broken.has(key)) return undefined;
  const later = everywhere.get(key);
  if (later) {
    return new ConfigError(use.loc, `${use.kind} "${use.name}" is used before it is declared`,
      `move its declaration (${where(later, use.loc)}) above this line`);
  }
  const known = [...declared.keys(), ...broken].filter((k) => k.startsWith(`${use.kind} `)).map((k) => k.slice(use.kind.length + 1));
  const close = closestWord(use.name, known);
  return new ConfigError(use.loc, `no ${use.kind} named "${use.name}"`,
    close !== undefined ? `did you mean "${close}"?` : `declare it on an earlier line, for example: ${EXAMPLE[use.kind](use.name)}`);
}
// #endregion check-reference

/** An inline table must be a list or a mapping, as its use requires. (A file table's shape is known only when it is read.) */
function checkShape(use: Use, tables: ReadonlyMap<string, TableDecl>): ConfigError | undefined {
  const table = use.kind === 'table' ? tables.get(use.name) : undefined;
  if (!table?.entries || !use.shape || table.entries.shape === use.shape) return undefined;
  return new ConfigError(use.loc, `table ${use.name} is a ${table.entries.shape}, but ${use.role} must be a ${use.shape}`,
    use.shape === 'mapping' ? `write its entries as key = value (line ${table.loc.line})` : `write its entries as plain values (line ${table.loc.line})`);
}

/**
 * The same check for tables stored in files, once check-files.ts has read
 * them: the first entry of a file decides whether it is a list or a
 * mapping, so its shape is known only then.
 */
export function checkFileTableShapes(config: Config, shapes: ReadonlyMap<string, 'list' | 'mapping'>): ConfigError[] {
  const errors: ConfigError[] = [];
  const tables = new Map(config.tables.filter((t) => t.path !== undefined).map((t) => [t.name, t]));
  for (const st of config.statements) {
    for (const use of uses(st)) {
      const table = use.kind === 'table' ? tables.get(use.name) : undefined;
      const shape = table && shapes.get(table.name);
      if (!table || !shape || !use.shape || shape === use.shape) continue;
      const hint = table.backend === 'db'
        ? `makemap decided when it built ${table.path}: rebuild it ${use.shape === 'list' ? 'with -t set, from one value per line' : 'without -t set, from key value lines'}`
        : `the first entry of ${table.path} decides: ${use.shape === 'mapping' ? 'write each line as key value' : 'write one value per line, with nothing after it'}`;
      errors.push(new ConfigError(use.loc, `table ${use.name} is a ${shape}, but ${use.role} must be a ${use.shape}`, hint));
    }
  }
  return errors;
}

/** `line N`, or `FILE:N` when the declaration is in another (included) file. */
function where(loc: SourceLocation, from: SourceLocation): string {
  return loc.file === from.file ? `line ${loc.line}` : `${loc.file}:${loc.line}`;
}

/** The names a statement declares, as `kind name`. */
function declarations(st: Statement): string[] {
  switch (st.kind) {
    case 'table': case 'action': case 'filter': case 'proc': case 'pki': case 'ca':
      return [`${st.kind} ${st.name}`];
    case 'mda-wrapper':
      return [`mda wrapper ${st.name}`];
    default:
      return [];
  }
}

/** The names a statement uses. */
function uses(st: Statement): Use[] {
  const found: Use[] = [];
  const table = (name: string | undefined, loc: SourceLocation, role: string, shape?: 'list' | 'mapping') => {
    if (name !== undefined) found.push({ kind: 'table', name, loc, role, ...(shape && { shape }) });
  };
  const target = (t: ValueOrTable | undefined, role: string, shape: 'list' | 'mapping') => {
    if (t?.kind === 'table') table(t.name, t.loc, role, shape);
  };
  const name = (kind: NameKind, n: string | undefined) => {
    if (n !== undefined) found.push({ kind, name: n, loc: st.loc });
  };
  switch (st.kind) {
    case 'listen':
      table(st.auth?.table, st.loc, 'the credentials table');
      table(st.hostnames, st.loc, 'the hostnames table', 'mapping');
      table(st.senders?.table, st.loc, 'the senders table', 'mapping');
      for (const f of typeof st.filter === 'string' ? [st.filter] : st.filter ?? []) name('filter', f);
      name('pki', st.pki);
      name('ca', st.ca);
      break;
    case 'action':
      if (isRelay(st)) {
        const o = st.options;
        target(o.host, 'the relay host table', 'list');
        target(o.src, 'the source address table', 'list');
        table(o.domain, st.loc, 'the domain table', 'mapping');
        table(o.heloSrc, st.loc, 'the helo-src table', 'mapping');
        table(o.auth, st.loc, 'the credentials table', 'mapping');
        name('pki', o.pki);
        name('ca', o.ca);
        name('filter', o.filter);
      } else {
        const o = st.options;
        table(o.alias?.table, st.loc, 'the alias table', 'mapping');
        table(o.virtual?.table, st.loc, 'the virtual table', 'mapping');
        table(o.userbase, st.loc, 'the userbase table', 'mapping');
        name('mda wrapper', o.wrapper);
      }
      break;
    case 'match':
      for (const c of st.criteria) target(c.target, `the table of "${c.kind}"`, 'list');
      if (st.decision.kind === 'action') found.push({ kind: 'action', name: st.decision.name, loc: st.decision.loc });
      break;
    case 'filter':
      if (st.type === 'builtin') target(st.condition.target, `the table of "${st.condition.kind}"`, 'list');
      if (st.type === 'proc') name('proc', st.proc);
      if (st.type === 'chain') for (const f of st.filters) name('filter', f);
      break;
  }
  return found;
}

/** A chain lists filters, each once, and no chains. */
function checkChains(config: Config): ConfigError[] {
  const errors: ConfigError[] = [];
  const chains = new Set(config.filters.filter((f) => f.type === 'chain').map((f) => f.name));
  for (const f of config.filters) {
    if (f.type !== 'chain') continue;
    const members = new Set<string>();
    for (const m of f.filters) {
      if (chains.has(m)) errors.push(new ConfigError(f.loc, `chain ${f.name} contains the chain ${m}`, 'a chain lists filters, not other chains; list its filters instead'));
      if (members.has(m)) errors.push(new ConfigError(f.loc, `chain ${f.name} lists filter ${m} twice`));
      members.add(m);
    }
  }
  return errors;
}

/** Each pki, across its statements, needs a certificate and a key. */
function checkPkis(config: Config): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const name of new Set(config.pkis.map((p) => p.name))) {
    const parts = config.pkis.filter((p) => p.name === name);
    for (const part of ['cert', 'key'] as const) {
      if (!parts.some((p) => p[part] !== undefined)) {
        errors.push(new ConfigError(parts[0]!.loc, `pki ${name} has no ${part === 'cert' ? 'certificate' : 'key'}`,
          part === 'cert' ? `add: pki ${name} cert "/etc/ssl/${name}.crt"` : `add: pki ${name} key "/etc/ssl/private/${name}.key"`));
      }
    }
  }
  return errors;
}

/** Settings that depend on others, and the file as a whole. */
function checkSettings(config: Config, file: string, broken: ReadonlySet<string>): ConfigError[] {
  const errors: ConfigError[] = [];
  const sockets = config.listeners.filter((l) => l.on.kind === 'socket');
  for (const extra of sockets.slice(1)) {
    errors.push(new ConfigError(extra.loc, `listen on socket is already declared, at line ${sockets[0]!.loc.line}`, 'merge the two into one statement'));
  }
  // The statements' order, not their lines, says what comes first: includes have their own lines.
  const srsKey = config.statements.findIndex((o) => o.kind === 'srs key' && !o.backup);
  for (const a of config.actions) {
    if (isRelay(a) && a.options.srs && (srsKey < 0 || srsKey > config.statements.indexOf(a))) {
      errors.push(new ConfigError(a.loc, `action ${a.name} uses srs, but no srs key is declared before it`,
        'declare one on an earlier line: srs key "a long random secret"'));
    }
  }
  if (config.rules.length === 0 && !broken.has('match')) {
    // OpenSMTPD refuses such a file: with no rule, every recipient is rejected.
    errors.push(new ConfigError({ file, line: 1, col: 1 }, 'no match rules: every recipient would be rejected',
      `add at least one, such as: match from local for local action "${config.actions[0]?.name ?? 'local'}"`));
  }
  return errors;
}
