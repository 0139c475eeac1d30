/**
 * The ruleset: the `match` rules of smtpd.conf, ready to decide, for each
 * RCPT TO, which action handles the recipient or why it is refused. The
 * lookup process builds it once per configuration and asks it once per
 * recipient, as OpenSMTPD's lka_expand() calls ruleset_match().
 *
 *     const ruleset = Ruleset.fromConfig(config);
 *     const decision = ruleset.match(session, envelope);
 *     if ('reject' in decision) reply(decision.reject.reply);
 */
import type { ActionDecl, Config, MatchCriterion, MatchRule, SourceLocation, TableDecl, ValueOrTable } from '../config/ast.ts';
import { openTable, Table, TableError, tableSource, type SetService, type TableOptions, type TraceHook } from '../table/index.ts';
import { holds, planRule, SERVICE, type Check, type TableResolver } from './criteria.ts';
import { localTables, systemLocalNames, type LocalNames } from './local-names.ts';
import type { EnvelopeInfo, SessionInfo } from './session.ts';

/** The recipient goes to `action`, chosen by the rule numbered `number` (from 1, in file order). */
export interface Accepted {
  rule: MatchRule;
  number: number;
  action: ActionDecl;
}

/** Why a recipient is refused, and the reply the client gets. */
export interface Rejection {
  code: 550 | 451;
  /** The whole reply line, without CRLF: `550 Invalid recipient: <joe@example.org>`. */
  reply: string;
  reason: 'reject rule' | 'no rule matched' | 'table error';
  /** The reject rule that matched, or the rule whose table failed. */
  rule?: MatchRule;
  number?: number;
  error?: TableError;
}

export type Decision = Accepted | { reject: Rejection };

/** One answer, as handed to a trace hook (`trace rules`). */
export interface RuleTrace {
  /** The rule's number, from 1, as OpenSMTPD's logs count them. */
  rule: number;
  /** The check as written or implied: `from src <relays>`, `for local (the default)`. */
  criterion: string;
  /** The criterion in the configuration; absent for an implied one. */
  node?: MatchCriterion;
  /** Whether it held, negation applied; `error` when its table could not answer. */
  result: boolean | 'error';
}

export type RuleTraceHook = (trace: RuleTrace) => void;

export interface RulesetOptions {
  /** This machine's names and addresses, for `from local` and `for local`; by default the system's. */
  localNames?: LocalNames;
  /** Called for every check evaluated, in order. */
  trace?: RuleTraceHook;
  /** Opens a declared table; by default from its declaration, with the configuration's sub-address delimiter. */
  openTable?: (decl: TableDecl) => Table;
  /** Called after every lookup in the tables the ruleset opens (`smtpd -T lookup`). */
  tableTrace?: TraceHook;
}

/** A configuration the ruleset cannot be built from: a table that cannot be opened or asked, an unknown action. */
export class RulesetError extends Error {
  override readonly name = 'RulesetError';
  constructor(readonly loc: SourceLocation, message: string) {
    super(`${loc.file}:${loc.line}:${loc.col}: ${message}`);
  }
}

/** A rule with its checks planned and its action found. */
interface PlannedRule {
  rule: MatchRule;
  number: number;
  checks: Check[];
  action?: ActionDecl;
}

export class Ruleset {
  private constructor(
    private readonly rules: readonly PlannedRule[],
    private readonly tables: readonly Table[],
    private readonly trace: RuleTraceHook | undefined,
  ) {}

  /** Builds the ruleset: opens every table the rules name, once. Throws RulesetError. */
  static fromConfig(config: Config, options: RulesetOptions = {}): Ruleset {
    const tables = new TableCache(config, options);
    const rules = config.rules.map((rule, i): PlannedRule => {
      const checks = tables.planned(rule);
      if (rule.decision.kind === 'reject') return { rule, number: i + 1, checks };
      const { name, loc } = rule.decision;
      const action = config.actions.find((a) => a.name === name);
      if (!action) throw new RulesetError(loc, `no action named "${name}"`);
      return { rule, number: i + 1, checks, action };
    });
    return new Ruleset(rules, tables.all(), options.trace);
  }

  // #region first-match
  /**
   * Decides one recipient. The rules are tried in the order of the file,
   * and within a rule the checks in QUESTION_ORDER; a rule matches when
   * every check holds, and the first rule that matches decides. Nothing
   * after it is looked at, so a broad rule written early hides every
   * narrower rule below it. A rule ending in `reject`, or the end of the
   * list, refuses the recipient. A table that cannot answer stops the
   * search: the server does not know which rule would have matched, so it
   * asks the client to try again later rather than guess.
   */
  match(session: SessionInfo, envelope: EnvelopeInfo): Decision {
    for (const { rule, number, checks, action } of this.rules) {
      let matched: boolean;
      try {
        matched = checks.every((check) => this.traced(number, check, () => holds(check, session, envelope)));
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
        return { reject: { ...refusal(451, envelope), reason: 'table error', rule, number, error: err } };
      }
      if (!matched) continue;
      if (!action) return { reject: { ...refusal(550, envelope), reason: 'reject rule', rule, number } };
      return { rule, number, action };
    }
    return { reject: { ...refusal(550, envelope), reason: 'no rule matched' } };
  }
  // #endregion first-match

  /** Closes every table the ruleset opened. */
  close(): void {
    for (const table of this.tables) table.close();
  }

  /** Runs one check and tells the trace hook its result, or that its table failed. */
  private traced(rule: number, check: Check, run: () => boolean): boolean {
    const base = { rule, criterion: check.text, ...(check.criterion && { node: check.criterion }) };
    try {
      const result = run();
      this.trace?.({ ...base, result });
      return result;
    } catch (err) {
      if (err instanceof TableError) this.trace?.({ ...base, result: 'error' });
      throw err;
    }
  }
}

// #region rejection
/**
 * The reply a refused recipient gets. The lookup process answers "550
 * Invalid recipient" when no rule matches and when a reject rule does —
 * the client cannot tell the two apart, and should not — and "451
 * Temporary failure" when a table failed (lka_session.c); the SMTP
 * process adds the recipient (smtp_session.c). Unlike most of OpenSMTPD's
 * replies these carry no enhanced status code: the text comes as it is
 * from the lookup process. A 550 is final, so the client bounces the
 * message for that recipient; a 451 makes it queue and retry.
 */
function refusal(code: 550 | 451, envelope: EnvelopeInfo): { code: 550 | 451; reply: string } {
  const text = code === 550 ? 'Invalid recipient' : 'Temporary failure';
  return { code, reply: `${code} ${text}: <${envelope.rcptTo}>` };
}
// #endregion rejection

/** Opens each table once, however many rules name it, and checks that it can answer what they ask. */
class TableCache implements TableResolver {
  private readonly opened = new Map<string, Table>();
  private readonly inline: Table[] = [];
  private readonly declared: Map<string, TableDecl>;
  private readonly open: (decl: TableDecl) => Table;
  private readonly delimiter: string;
  private readonly tableOptions: TableOptions;
  private readonly localNames: LocalNames;
  /** Where the criterion being planned is, for errors. */
  private at: SourceLocation = { file: '', line: 0, col: 0 };

  constructor(config: Config, options: RulesetOptions) {
    this.declared = new Map(config.tables.map((t) => [t.name, t]));
    const delim = config.options.filter((o) => o.kind === 'smtp sub-addr-delim').at(-1);
    this.delimiter = delim?.kind === 'smtp sub-addr-delim' ? delim.delimiter : '+';
    this.tableOptions = { subaddressDelimiter: this.delimiter, ...(options.tableTrace && { trace: options.tableTrace }) };
    this.open = options.openTable ?? ((decl) => openTable(decl.name, tableSource(decl), this.tableOptions));
    this.localNames = options.localNames ?? systemLocalNames();
  }

  planned(rule: MatchRule): Check[] {
    this.at = rule.loc;
    const checks = planRule(rule, this);
    for (const check of checks) this.verify(check);
    return checks;
  }

  reserved(name: string): Table {
    return this.remember(name, () => {
      const entries = localTables(this.localNames)[name];
      if (!entries) throw new RulesetError(this.at, `no reserved table ${name}`);
      return openTable(name, { backend: 'static', entries }, this.tableOptions);
    });
  }

  target(target: ValueOrTable): Table {
    this.at = target.loc;
    if (target.kind === 'value') {
      const source = { backend: 'static', entries: [{ key: target.value }] } as const;
      const table = this.attempt(() => openTable(JSON.stringify(target.value), source, this.tableOptions));
      this.inline.push(table);
      return table;
    }
    return this.remember(target.name, () => {
      const decl = this.declared.get(target.name);
      if (!decl) throw new RulesetError(target.loc, `no table named "${target.name}"`);
      return this.open(decl);
    });
  }

  all(): Table[] {
    return [...this.opened.values(), ...this.inline];
  }

  /**
   * Refuses, at start-up, a table that cannot answer the rule's question
   * (a `regex:` table without `regex`, a `db:` table with it), and
   * compiles regular expressions now, so that a bad pattern stops the
   * server instead of failing every recipient that reaches it.
   */
  private verify(check: Check): void {
    if (!check.table || !check.criterion) return;
    const service: SetService | undefined = check.regex ? 'regex' : check.kind === 'auth' ? 'string' : SERVICE[check.kind];
    this.at = check.criterion.loc;
    if (service && !check.table.provides(service)) {
      throw new RulesetError(this.at, `${check.text}: table ${check.table.name} (${check.table.backendName}) cannot answer ${service} lookups`);
    }
    if (check.regex) this.attempt(() => check.table?.match('regex', ''));
  }

  private remember(name: string, make: () => Table): Table {
    let table = this.opened.get(name);
    if (!table) {
      table = this.attempt(make);
      this.opened.set(name, table);
    }
    return table;
  }

  private attempt<T>(run: () => T): T {
    try {
      return run();
    } catch (err) {
      if (err instanceof TableError) throw new RulesetError(this.at, err.message);
      throw err;
    }
  }
}
