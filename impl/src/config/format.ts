/**
 * Prints a parsed configuration back as smtpd.conf, one statement per
 * line, in one canonical spelling: macros already expanded, optional words
 * in one order, names quoted the way the man page quotes them. Parsing the
 * output again gives the same configuration.
 *
 * Also describes the match rules in plain words, in the order they are
 * tried.
 */
import {
  type ActionDecl, type Config, type FilterDecl, isRelay, type ListenDecl, type MatchCriterion,
  type MatchRule, type ProcessOptions, type Statement, type ValueOrTable,
} from './ast.ts';
import { RESERVED_WORDS } from './reserved.ts';

/** A value as a bare word when smtpd.conf allows it, else in double quotes. */
export function word(value: string): string {
  const bare = /^[A-Za-z0-9_:][^\s(){}<>!=#,"'\\$]*$/.test(value) && !RESERVED_WORDS.has(value);
  return bare ? value : quoted(value);
}

/**
 * A value in double quotes, with its double quotes escaped. Inside quotes
 * the lexer reads `\ ` and `\<tab>` as a space and a tab, so a backslash
 * of the value before either is doubled (`\\ ` reads back as `\ `).
 */
export function quoted(value: string): string {
  return `"${value.replace(/\\(?=[ \t])/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A reference to a table: its name quoted as any other, or a reserved word (`<"domain">`) would not parse again. */
function tableRef(name: string): string {
  return `<${word(name)}>`;
}

function target(t: ValueOrTable): string {
  return t.kind === 'table' ? tableRef(t.name) : word(t.value);
}

/** The whole configuration, one statement per line. */
export function formatConfig(config: Config): string {
  return config.statements.map(formatStatement).join('\n') + '\n';
}

export function formatStatement(st: Statement): string {
  switch (st.kind) {
    case 'macro': return `${st.name} = ${quoted(st.value)}`;
    case 'include': return `# include ${quoted(st.path)} (its statements follow)`;
    case 'table': {
      if (!st.entries) return `table ${word(st.name)} ${st.path === undefined ? st.backend : word(`${st.backend}:${st.path}`)}`;
      const entries = st.entries.shape === 'list'
        ? st.entries.values.map(word)
        : st.entries.pairs.map((p) => `${word(p.key)} = ${word(p.value)}`);
      return `table ${word(st.name)} { ${entries.join(', ')} }`;
    }
    case 'pki': {
      const parts = [`pki ${word(st.name)}`];
      if (st.cert !== undefined) parts.push(`cert ${quoted(st.cert)}`);
      if (st.key !== undefined) parts.push(`key ${quoted(st.key)}`);
      if (st.dhe !== undefined) parts.push(`dhe ${st.dhe}`);
      return parts.join(' ');
    }
    case 'ca': return `ca ${word(st.name)} cert ${quoted(st.cert)}`;
    case 'listen': return formatListen(st);
    case 'action': return formatAction(st);
    case 'mda-wrapper': return `mda wrapper ${word(st.name)} ${quoted(st.command)}`;
    case 'match': return `match ${[...canonicalOrder(st.criteria).map(formatCriterion), formatDecision(st)].join(' ')}`;
    case 'filter': return formatFilter(st);
    case 'proc': return `proc ${quoted(st.name)} ${quoted(st.command)}${formatProcess(st.process)}`;
    case 'admd': return `admd ${word(st.authservId)}`;
    case 'bounce warn-interval': return `bounce warn-interval ${st.delays.map((d) => d.text).join(', ')}`;
    case 'mda limit':
    case 'scheduler limit':
    case 'smtp limit': return `${st.kind} ${st.limits.map((l) => `${l.name} ${l.value}`).join(' ')}`;
    case 'mta max-deferred': return `mta max-deferred ${st.count}`;
    case 'queue compression': return 'queue compression';
    case 'queue encryption': return st.key === undefined ? 'queue encryption' : `queue encryption ${quoted(st.key)}`;
    case 'queue ttl':
    case 'srs ttl': return `${st.kind} ${st.ttl.text}`;
    case 'smtp ciphers': return `smtp ciphers ${quoted(st.ciphers)}`;
    case 'smtp max-message-size': return `smtp max-message-size ${st.text}`;
    case 'smtp sub-addr-delim': return `smtp sub-addr-delim ${quoted(st.delimiter)}`;
    case 'srs key': return `srs key ${st.backup ? 'backup ' : ''}${quoted(st.secret)}`;
  }
}

function formatListen(l: ListenDecl): string {
  const parts = ['listen on', l.on.kind === 'socket' ? 'socket' : word(l.on.name)];
  if (l.family) parts.push(l.family);
  if (l.port !== undefined) parts.push(`port ${l.port}`);
  if (l.tls) parts.push(l.tls.mode === 'starttls' ? 'tls' : l.tls.mode + (l.tls.verify ? ' verify' : ''));
  if (l.pki !== undefined) parts.push(`pki ${word(l.pki)}`);
  if (l.ca !== undefined) parts.push(`ca ${word(l.ca)}`);
  if (l.auth) parts.push((l.auth.required ? 'auth' : 'auth-optional') + (l.auth.table !== undefined ? ` ${tableRef(l.auth.table)}` : ''));
  if (l.senders) parts.push(`senders ${tableRef(l.senders.table)}${l.senders.masquerade ? ' masquerade' : ''}`);
  if (l.hostname !== undefined) parts.push(`hostname ${word(l.hostname)}`);
  if (l.hostnames !== undefined) parts.push(`hostnames ${tableRef(l.hostnames)}`);
  if (l.tag !== undefined) parts.push(`tag ${word(l.tag)}`);
  if (l.filter !== undefined) parts.push(`filter ${typeof l.filter === 'string' ? quoted(l.filter) : `{ ${l.filter.map(quoted).join(', ')} }`}`);
  if (l.maskSrc) parts.push('mask-src');
  if (l.noDsn) parts.push('no-dsn');
  if (l.receivedAuth) parts.push('received-auth');
  if (l.proxyV2) parts.push('proxy-v2');
  return parts.join(' ');
}

function formatAction(a: ActionDecl): string {
  const parts = ['action', quoted(a.name)];
  if (isRelay(a)) {
    const o = a.options;
    parts.push('relay');
    if (o.host) parts.push(`host ${target(o.host)}`);
    if (o.backup) parts.push(o.backup.mx !== undefined ? `backup mx ${word(o.backup.mx)}` : 'backup');
    if (o.domain !== undefined) parts.push(`domain ${tableRef(o.domain)}`);
    if (o.tls) parts.push(o.tls.noVerify ? 'tls no-verify' : 'tls');
    if (o.auth !== undefined) parts.push(`auth ${tableRef(o.auth)}`);
    if (o.pki !== undefined) parts.push(`pki ${word(o.pki)}`);
    if (o.ca !== undefined) parts.push(`ca ${word(o.ca)}`);
    if (o.helo !== undefined) parts.push(`helo ${word(o.helo)}`);
    if (o.heloSrc !== undefined) parts.push(`helo-src ${tableRef(o.heloSrc)}`);
    if (o.mailFrom !== undefined) parts.push(`mail-from ${word(o.mailFrom)}`);
    if (o.src) parts.push(`src ${target(o.src)}`);
    if (o.srs) parts.push('srs');
    if (o.filter !== undefined) parts.push(`filter ${quoted(o.filter)}`);
    if (o.ttl) parts.push(`ttl ${o.ttl.text}`);
    return parts.join(' ');
  }
  const m = a.method;
  switch (m.kind) {
    case 'maildir': parts.push('maildir', ...(m.path !== undefined ? [quoted(m.path)] : []), ...(m.junk ? ['junk'] : [])); break;
    case 'mda': parts.push('mda', quoted(m.command)); break;
    case 'lmtp': parts.push('lmtp', quoted(m.destination), ...(m.rcptTo ? ['rcpt-to'] : [])); break;
    default: parts.push(m.kind);
  }
  const o = a.options;
  const exec = (allow: boolean) => (allow ? ' allow-exec' : '');
  if (o.alias) parts.push(`alias ${tableRef(o.alias.table)}${exec(o.alias.allowExec)}`);
  if (o.virtual) parts.push(`virtual ${tableRef(o.virtual.table)}${exec(o.virtual.allowExec)}`);
  if (o.forwardFile) parts.push(`forward-file${exec(o.forwardFile.allowExec)}`);
  if (o.userbase !== undefined) parts.push(`userbase ${tableRef(o.userbase)}`);
  if (o.user !== undefined) parts.push(`user ${word(o.user)}`);
  if (o.wrapper !== undefined) parts.push(`wrapper ${word(o.wrapper)}`);
  if (o.ttl) parts.push(`ttl ${o.ttl.text}`);
  return parts.join(' ');
}

function formatFilter(f: FilterDecl): string {
  const head = `filter ${quoted(f.name)}`;
  switch (f.type) {
    case 'proc': return `${head} proc ${quoted(f.proc)}`;
    case 'proc-exec': return `${head} proc-exec ${quoted(f.command)}${formatProcess(f.process)}`;
    case 'chain': return `${head} chain { ${f.filters.map(quoted).join(', ')} }`;
    case 'builtin': {
      const c = f.condition;
      const cond = `${c.negated ? '!' : ''}${c.kind}${c.regex ? ' regex' : ''}${c.target ? ` ${target(c.target)}` : ''}`;
      const d = f.decision;
      const decision = d.kind === 'junk' || d.kind === 'bypass' ? d.kind
        : `${d.kind} ${quoted(d.kind === 'rewrite' ? d.value : d.message)}`;
      return `${head} phase ${f.phase} match ${cond} ${decision}`;
    }
  }
}

function formatProcess(p: ProcessOptions): string {
  return (p.user !== undefined ? ` user ${word(p.user)}` : '') + (p.group !== undefined ? ` group ${word(p.group)}` : '')
    + (p.chroot !== undefined ? ` chroot ${quoted(p.chroot)}` : '');
}

/** `from` first, then `for`, then the other criteria as written: the order the man page reads them. */
function canonicalOrder(criteria: MatchCriterion[]): MatchCriterion[] {
  const rank = (c: MatchCriterion) => (c.kind.startsWith('from ') ? 0 : c.kind.startsWith('for ') ? 1 : 2);
  return [...criteria].sort((a, b) => rank(a) - rank(b));
}

/** `!from src <relays>`, `for domain regex "\.org$"`, `tls`. */
export function formatCriterion(c: MatchCriterion): string {
  return `${c.negated ? '!' : ''}${c.kind}${c.regex ? ' regex' : ''}${c.target ? ` ${target(c.target)}` : ''}`;
}

function formatDecision(rule: MatchRule): string {
  return rule.decision.kind === 'reject' ? 'reject' : `action ${quoted(rule.decision.name)}`;
}

// #region describe-rules
/**
 * The match rules in the order they are tried, one per line:
 *
 *     1. from local for local -> action "local_mail"
 *     2. from local (default) for any -> action "outbound"
 *
 * A rule without a `from` criterion only accepts mail from this host, and a
 * rule without a `for` criterion only mail to its local domains: that is
 * what smtpd does, so the description writes those defaults out.
 */
export function describeRules(config: Config): string {
  return config.rules.map((rule, i) => {
    const of = (prefix: string) => rule.criteria.filter((c) => c.kind.startsWith(prefix)).map(formatCriterion);
    const from = of('from ');
    const to = of('for ');
    const others = rule.criteria.filter((c) => !/^(from|for) /.test(c.kind)).map(formatCriterion);
    const criteria = [
      ...(from.length > 0 ? from : ['from local (default)']),
      ...(to.length > 0 ? to : ['for local (default)']),
      ...others,
    ];
    const decision = rule.decision.kind === 'reject' ? 'reject' : `action "${rule.decision.name}"`;
    return `${i + 1}. ${criteria.join(' ')} -> ${decision}\n`;
  }).join('');
}
// #endregion describe-rules
