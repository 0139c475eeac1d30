/**
 * The lookup process: the ruleset, built once from the configuration,
 * answering smtp's question for each RCPT TO, and the listeners'
 * credentials tables, answering its question for each AUTH. Tables are
 * opened here, as _smtpd: a table file the rules or a listener name must
 * be readable by that user.
 */
import type { Config } from '../../config/index.ts';
import { checkCredentials, PasswordThread, type PasswordCheck } from '../../crypto/index.ts';
import type { Logger } from '../../log/index.ts';
import { Expander, openActionTables, userbaseLookup, type Expansion } from '../../expand/index.ts';
import { oneLine } from '../../delivery/failure.ts';
import { Ruleset } from '../../lookup/index.ts';
import { lookupTraceLine, openTable, TableError, tableSource, type Table, type TraceHook } from '../../table/index.ts';
import { lookupChannel, type AuthAnswer, type RcptVerdict } from '../channels/lookup.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

/** How much of an expansion's reason the log keeps. */
const MAX_REASON_LOG = 2000;

export async function startLookup(ctx: RoleContext): Promise<Role> {
  // `-T lookup`: every answer of every table this process opens, as OpenSMTPD's lookup process traces them.
  const tableTrace: TraceHook | undefined = ctx.log.tracing('lookup') ? (t) => ctx.log.trace('lookup', lookupTraceLine(t)) : undefined;
  const ruleset = Ruleset.fromConfig(ctx.config, {
    trace: (t) => ctx.log.trace('rules', `rules: rule ${t.rule} ${t.criterion}: ${t.result}`),
    ...(tableTrace && { tableTrace }),
  });
  let credentials: Map<string, Table>;
  let actionTables: Map<string, Table>;
  try {
    credentials = openCredentials(ctx.config, tableTrace);
    actionTables = openActionTables(ctx.config, tableTrace);
  } catch (err) {
    ruleset.close();
    throw err;
  }
  // AUTH's hashing runs on a thread of its own, while RCPT lookups go on here.
  const passwords = new PasswordThread();
  const verify: PasswordCheck = (password, hash) => passwords.verify(password, hash);
  const smtpSocket = ctx.links.get('smtp');
  const queueSocket = ctx.links.get('queue');
  if (!smtpSocket || !queueSocket) throw new Error('lookup: missing a link to smtp or to the queue');

  /**
   * Expansion (expand/): the rules, the action's tables, the userbase,
   * and ~/.forward, which only the parent can open (it is root; lookup
   * runs as _smtpd). :include: files are read here, as _smtpd, by
   * readIncludeFile() (target-files.ts), which refuses what is not a
   * regular file of reasonable size.
   */
  const expander = new Expander(ctx.config, {
    ruleset,
    tables: actionTables,
    getpwnam: userbaseLookup(),
    readForward: async (user) => {
      const file = await ctx.parent.request({ type: 'parent.forward.open', user }, { timeoutMs: 10_000 });
      if (file.status === 'ok') return { status: 'ok', path: file.path ?? '', content: file.content ?? '' };
      if (file.status === 'missing') return { status: 'missing' };
      return { status: file.status, path: file.path ?? '', reason: file.reason ?? '' };
    },
    log: ctx.log,
  });

  // #region rcpt-verdict
  /**
   * One RCPT TO: the rules decide, expansion follows, and the answer goes
   * back as plain data (the envelopes the recipient became, or the reply
   * line that refuses it), never the configuration's objects: smtp learns
   * what it needs to answer the client, no more. The log line that names
   * a file or a table line stays here.
   */
  const rcpt = async ({ session, envelope }: { session: Parameters<Expander['expand']>[0]['session']; envelope: { mailFrom: string; rcptTo: string } }): Promise<RcptVerdict> => {
    const expansion: Expansion = await expander.expand({ session, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo });
    if (expansion.result === 'ok') {
      const first = expansion.recipients[0];
      return {
        verdict: 'accept',
        action: first?.dispatcher ?? '',
        expanded: expansion.recipients.map((r) => ({
          recipient: r.recipient, dispatcher: r.dispatcher, ...(r.delivery && { delivery: r.delivery }),
        })),
      };
    }
    // One line, and of a size a log can hold: a table entry may be 100 KB long, and name itself in the reason.
    if (expansion.log) ctx.log.info(`info: lookup: ${envelope.rcptTo}: ${oneLine(expansion.log, MAX_REASON_LOG)}`);
    return {
      verdict: expansion.result === 'tempfail' ? 'tempfail' : 'reject',
      code: expansion.code,
      ...(expansion.enhanced !== '' && { enhanced: expansion.enhanced }),
      reply: expansion.reply,
    };
  };
  // #endregion rcpt-verdict

  const smtp = new Peer({
    self: 'lookup',
    peer: 'smtp',
    transport: socketTransport(smtpSocket),
    log: ctx.log,
    serves: {
      channel: lookupChannel,
      handlers: {
        'lookup.rcpt': rcpt,
        'lookup.auth': ({ table, user, password }) => authenticate(ctx.log, credentials, table, user, password, verify),
      },
    },
  });

  /** The queue asks where a bounce goes: the same question, for the sender of the failed message. */
  const queue = new Peer({
    self: 'lookup',
    peer: 'queue',
    transport: socketTransport(queueSocket),
    log: ctx.log,
    serves: {
      channel: lookupChannel,
      handlers: {
        'lookup.rcpt': rcpt,
        'lookup.auth': () => {
          throw new Error('the queue may not check passwords');
        },
      },
    },
  });
  return {
    stop: async () => {
      smtp.close();
      queue.close();
      ruleset.close();
      for (const table of actionTables.values()) table.close();
      for (const table of credentials.values()) table.close();
      await passwords.close();
    },
  };
}

/**
 * The credentials tables of the listeners (`listen on ... auth <creds>`),
 * opened once, at start, each once however many listeners name it. A
 * table that cannot be opened, or cannot answer credentials lookups (a
 * `regex:` table), stops the daemon now rather than failing every AUTH.
 * `auth` without a table never gets here: the parent refuses it before
 * starting anything (see parent/daemon.ts).
 */
function openCredentials(config: Config, trace?: TraceHook): Map<string, Table> {
  const declared = new Map(config.tables.map((t) => [t.name, t]));
  const tables = new Map<string, Table>();
  for (const listener of config.listeners) {
    const name = listener.auth?.table;
    if (name === undefined || tables.has(name)) continue;
    const { file, line, col } = listener.loc;
    const where = `${file}:${line}:${col}: the credentials table ${name}`;
    const decl = declared.get(name);
    if (!decl) throw new Error(`${where} is not declared`);
    let table: Table;
    try {
      table = openTable(name, tableSource(decl), trace && { trace });
    } catch (err) {
      if (err instanceof TableError) throw new Error(`${where}: ${err.message}`);
      throw err;
    }
    if (!table.provides('credentials')) {
      table.close();
      throw new Error(`${where} (${table.backendName}) cannot answer credentials lookups`);
    }
    tables.set(name, table);
  }
  return tables;
}

/**
 * One AUTH, as OpenSMTPD's lka_authenticate() answers it: the password
 * is right, wrong, or the table could not say. The last is logged here,
 * with the table's error, and goes back to smtp as `tempfail` alone; the
 * password is never logged. smtp may only ask about a table a listener
 * checks AUTH against: not about the aliases, nor any other.
 */
async function authenticate(
  log: Logger, credentials: ReadonlyMap<string, Table>, name: string, user: string, password: string, verify: PasswordCheck,
): Promise<AuthAnswer> {
  const table = credentials.get(name);
  if (!table) throw new Error(`no listener checks AUTH against a table named ${name}`);
  try {
    return { result: (await checkCredentials(table, user, password, verify)) ? 'ok' : 'permfail' };
  } catch (err) {
    if (!(err instanceof TableError)) throw err;
    log.warn(`warn: lookup: credentials table ${name} could not answer for user=${visible(user)}: ${err.message}`);
    return { result: 'tempfail' };
  }
}

/** A user name as a log line may show it: printable ASCII, the rest as `?`, as the smtp engine logs it. */
function visible(user: string): string {
  return user.replace(/[^\x21-\x7e]/g, '?');
}
