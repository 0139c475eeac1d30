/**
 * The smtp process: the SMTP engine, fed with the listeners the parent
 * bound, asking lookup about each recipient and each AUTH, and handing
 * each message to the queue, both over their sockets. It is the process
 * that reads what strangers send, so it holds as little as possible: no
 * spool, no tables, no password hashes; only the TLS keys, which Node's
 * TLS needs in the process that speaks it (see roles/idle.ts on crypto).
 */
import { X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { tlsContextsFor, type LoadedPki } from '../../crypto/index.ts';
import type { Logger } from '../../log/index.ts';
import { systemLocalNames } from '../../lookup/index.ts';
import {
  createSmtpServer, limitsFromConfig, listenerFromDecl, type Hook, type SmtpServer,
} from '../../smtp/index.ts';
import type { PkiMaterial } from '../channels/control.ts';
import { lookupChannel } from '../channels/lookup.ts';
import { queueChannel } from '../channels/queue.ts';
import { descriptorLimit } from '../descriptor-limit.ts';
import { Peer } from '../peer.ts';
import { RemoteQueue } from '../queue-proxy.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

type NoCalls = Record<never, never>;

export async function startSmtp(ctx: RoleContext): Promise<Role> {
  const { config, log } = ctx;
  const queueSocket = ctx.links.get('queue');
  const lookupSocket = ctx.links.get('lookup');
  if (!queueSocket || !lookupSocket) throw new Error('smtp: missing a link to the queue or to lookup');
  const queue = new Peer<NoCalls, typeof queueChannel['calls']>({
    self: 'smtp', peer: 'queue', transport: socketTransport(queueSocket), calls: queueChannel, log,
  });
  const lookup = new Peer<NoCalls, typeof lookupChannel['calls']>({
    self: 'smtp', peer: 'lookup', transport: socketTransport(lookupSocket), calls: lookupChannel, log,
  });

  const hostname = systemLocalNames().hostname;
  const pkis = new Map(ctx.pkis.map((p) => [p.name, loadedPki(p)]));
  const queueTtl = config.options.findLast((o) => o.kind === 'queue ttl');
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  if (process.env.SMTPD_NAMESERVERS) resolver.setServers(process.env.SMTPD_NAMESERVERS.split(',').map((s) => s.trim()));
  const engines: SmtpServer[] = [];
  // Every listener's sessions count against one budget: they share this process's descriptors.
  const limit = descriptorLimit();
  const sessions = { max: Math.max(1, limit - Math.min(64, Math.floor(limit / 2))), open: 0 };

  for (const handed of ctx.listeners) {
    const decl = config.listeners[handed.info.statement - 1];
    if (!decl) throw new Error(`smtp: no listen statement ${handed.info.statement}`);
    const contexts = tlsContextsFor(config, decl, { pkis, hostname });
    const engine = createSmtpServer({
      hostname,
      software: 'OpenSMTPD-compatible',
      queue: new RemoteQueue(queue),
      listener: listenerFromDecl(decl),
      hooks: { 'rcpt-to': [rulesHook(lookup)] },
      ...(contexts && { tls: (name: string) => contexts(name) }),
      limits: limitsFromConfig(config),
      sessions,
      ...(queueTtl?.kind === 'queue ttl' && { queueTtl: queueTtl.ttl.seconds }),
      logger: {
        info: (line) => log.info(line), warn: (line) => log.warn(line),
        ...(log.tracing('smtp') && { trace: (line: string) => log.trace('smtp', line) }),
      },
      resolveName: (address) => resolver.reverse(address).then((names) => names[0], () => undefined),
      ...(decl.auth?.table !== undefined && { authenticate: credentialsCheck(lookup, decl.auth.table) }),
    });
    engines.push(engine);
    engine.listen(handed.server);
    handed.takeOver();
    log.debug(`debug: smtp: serving ${handed.info.address} port ${handed.info.port}`);
  }

  return {
    drain: (deadlineMs) => drain(log, engines, deadlineMs),
    stop: async () => {
      await Promise.all(engines.map((e) => e.close()));
      queue.close();
      lookup.close();
    },
  };
}

/**
 * The rcpt-to hook: the rules and the tables live in the lookup process,
 * so each RCPT TO is one request there and one answer, which the hook
 * turns into the engine's vocabulary: the action that delivers the
 * recipient and the envelopes it expanded to (aliases, virtual maps,
 * ~/.forward), or the reply that refuses it, for good or for now. If lookup cannot answer, the recipient is
 * refused with a temporary error, and the client tries again later;
 * accepting it without the rules would make the server an open relay
 * whenever lookup is slow.
 */
function rulesHook(lookup: Peer<NoCalls, typeof lookupChannel['calls']>): Hook {
  return async ({ param, session }) => {
    try {
      const answer = await lookup.request({
        type: 'lookup.rcpt',
        session: {
          local: session.clientAddress === 'local',
          address: session.clientAddress,
          ...(session.rdns !== undefined && { rdns: session.rdns }),
          ...(session.tag !== undefined && { tag: session.tag }),
          ...(session.authUser !== undefined && { authUser: session.authUser }),
          helo: session.helo ?? '',
          tls: session.tls !== undefined,
        },
        envelope: { mailFrom: session.sender ?? '', rcptTo: param },
      }, { timeoutMs: 30_000 });
      if (answer.verdict === 'accept' && answer.action !== undefined) {
        const expanded = answer.expanded?.map((t) => ({
          address: t.recipient, dispatcher: t.dispatcher, ...(t.delivery && { delivery: t.delivery }),
        }));
        return { decision: 'accept', dispatcher: answer.action, ...(expanded && expanded.length > 0 && { expanded }) };
      }
      const code = answer.code ?? (answer.verdict === 'tempfail' ? 451 : 550);
      const text = answer.reply?.replace(/^\d{3} /, '') ?? 'Invalid recipient';
      const enhanced = answer.enhanced !== undefined && !text.startsWith(answer.enhanced) ? answer.enhanced : undefined;
      return { decision: 'reject', reply: { code, ...(enhanced !== undefined && { enhanced }), lines: [text] } };
    } catch {
      return { decision: 'reject', reply: { code: 451, lines: ['Temporary failure'] } };
    }
  };
}

/**
 * AUTH, for a listener with `auth <table>`: the credentials table is in
 * lookup with the other tables, so each check is one request there. A
 * right or wrong password is the answer; a table that could not answer,
 * or a lookup process that does not, is thrown, and the engine turns a
 * throw into `454 4.7.0 Temporary authentication failure`: the client
 * keeps its password and tries again later rather than being told it is
 * wrong. The engine logs the outcome (`smtp authentication user=alice
 * result=ok|permfail|tempfail`), never the password.
 */
function credentialsCheck(
  lookup: Peer<NoCalls, typeof lookupChannel['calls']>,
  table: string,
): (user: string, password: string) => Promise<boolean> {
  return async (user, password) => {
    const { result } = await lookup.request({ type: 'lookup.auth', table, user, password }, { timeoutMs: 30_000 });
    if (result === 'tempfail') throw new Error(`lookup: the credentials table ${table} could not answer`);
    return result === 'ok';
  };
}

/**
 * SIGTERM, in the smtp process. Each engine closes its listening socket
 * at once, so new clients are refused by the kernel; it answers idle
 * sessions `421`, and lets a session in the middle of a transaction
 * finish it and get its 421 at the next command. At the deadline,
 * whatever is still open is closed where it stands: a client that never
 * sends its DATA must not hold the daemon up. A message cut off before
 * its 250 is not lost: the client has no 250, so it still has the
 * message and will send it again.
 */
async function drain(log: Logger, engines: SmtpServer[], deadlineMs: number): Promise<number> {
  let cut = 0;
  const timer = setTimeout(() => (cut = engines.reduce((n, e) => n + e.sessions, 0)), deadlineMs);
  await Promise.all(engines.map((e) => e.close(deadlineMs)));
  clearTimeout(timer);
  log.debug(`debug: smtp: drained; ${cut} session(s) cut at the deadline`);
  return cut;
}

/** A pki as the parent sent it, with its certificates parsed again (X509Certificate objects do not cross processes). */
function loadedPki(p: PkiMaterial): LoadedPki {
  const blocks = p.chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return {
    name: p.name, certFile: '', keyFile: '', chain: p.chain, key: p.key, keyType: p.keyType, names: p.names,
    certificates: blocks.map((b) => new X509Certificate(b)),
    ...(p.dhe && { dhe: p.dhe }),
  };
}
