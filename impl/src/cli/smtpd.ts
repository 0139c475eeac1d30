/**
 * smtpd [-dnv] [-B queue=backend] [-D name=value] [-f file] [-T trace] [--spool dir]
 *
 * Without -f, smtpd runs the embedded default configuration (see
 * embedded-default.ts): a local mail server on 127.0.0.1:2525.
 *
 * `smtpd -n` reads the file, prints "configuration OK" or every error
 * found, and exits 0 or 1; with -v it also prints the configuration back
 * in canonical form. Without -n, smtpd runs the daemon (parent/daemon.ts):
 * -d keeps it in the foreground and logs bare lines to stderr, as
 * OpenSMTPD's -d does. Without -d it stays in the foreground too (there
 * is no fork into the background), prints its pid, and writes maillog
 * lines, with time, host and pid, to stderr, there being no syslog
 * connection yet.
 *
 * `-B queue=NAME` picks the queue's storage, as OpenSMTPD 6.8's smtpd
 * does (undocumented there): `fs`, the default, keeps a file per message
 * and per envelope; `log` appends every change to one file, a
 * write-ahead log (the chapter "The queue as a log"); `ram` keeps them in
 * memory, lost when the daemon stops, for tests and measurements.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatConfig, loadConfig, parseConfig, parseMacroOverride, type Config } from '../config/index.ts';
import { parseTraceFlags, TRACED_FLAGS, type TraceFlag } from '../log/index.ts';
import { runDaemon } from '../parent/daemon.ts';
import { ListenError, listenerAddresses } from '../parent/listeners.ts';
import { QUEUE_BACKENDS } from '../queue/index.ts';
import { defaultSpoolDir } from '../parent/spool.ts';
import { embeddedBanner, embeddedConfig, embeddedPaths, prepareEmbedded } from './embedded-default.ts';

const USAGE = 'usage: smtpd [-dnv] [-B queue=backend] [-D macro=value] [-f file] [-T trace] [--spool dir]';

/** Runs the command with its arguments (without the program name); resolves with the exit status. */
export async function smtpd(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        B: { type: 'string', short: 'B', multiple: true },
        d: { type: 'boolean', short: 'd' },
        n: { type: 'boolean', short: 'n' },
        v: { type: 'boolean', short: 'v', multiple: true },
        D: { type: 'string', short: 'D', multiple: true },
        f: { type: 'string', short: 'f' },
        T: { type: 'string', short: 'T', multiple: true },
        spool: { type: 'string' },
        h: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (e) {
    process.stderr.write(`smtpd: ${(e as Error).message}\n${USAGE}\n`);
    return 1;
  }
  const { values } = args;
  if (values.h) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const macros: Record<string, string> = {};
  for (const d of values.D ?? []) {
    const pair = parseMacroOverride(d);
    if (!pair) {
      process.stderr.write(`smtpd: -D needs name=value, not "${d}"\n`);
      return 1;
    }
    macros[pair[0]] = pair[1];
  }
  let queueBackend = 'fs';
  for (const b of values.B ?? []) {
    const [kind, name = ''] = b.split('=', 2);
    if (kind !== 'queue' || !(QUEUE_BACKENDS as readonly string[]).includes(name)) {
      process.stderr.write(`smtpd: -B ${b}: expected queue=NAME, NAME one of ${QUEUE_BACKENDS.join(', ')}\n`);
      return 1;
    }
    queueBackend = name;
  }
  if (queueBackend === 'ram') process.stderr.write('smtpd: -B queue=ram: messages are kept in memory only, and lost when smtpd stops\n');
  let trace: Set<TraceFlag>;
  try {
    trace = parseTraceFlags(values.T ?? []);
  } catch (e) {
    process.stderr.write(`smtpd: -T: ${(e as Error).message}\n`);
    return 1;
  }
  // Named one by one, that is: `-T all` asks for whatever there is.
  const silent = [...parseTraceFlags((values.T ?? []).flatMap((a) => a.split(',')).filter((w) => w.trim() !== 'all'))]
    .filter((f) => !TRACED_FLAGS.includes(f));
  if (silent.length > 0) {
    process.stderr.write(`smtpd: -T ${silent.join(',')}: nothing traces ${silent.length > 1 ? 'these' : 'this'} yet (traced: ${TRACED_FLAGS.join(', ')})\n`);
  }

  // Without -f, the embedded default (embedded-default.ts): a private
  // server on 127.0.0.1:2525 delivering under ./var. A system daemon is
  // always started with -f /etc/smtpd.conf (or the packaging's path).
  const embedded = values.f === undefined;
  const { config, errors, warnings } = embedded
    ? parseConfig(embeddedConfig(), { file: '(embedded default)', macros })
    : loadConfig(values.f!, { macros });
  for (const w of warnings) process.stderr.write(`${w.toString()}\n`);
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(`${e.toString()}\n`);
    return 1;
  }
  if (values.n) {
    // What the start would refuse is refused here too: a listener on an
    // interface or host this machine does not have (OpenSMTPD's -n says
    // "invalid virtual ip or interface").
    const unknown = await unknownListenAddresses(config);
    if (unknown.length > 0) {
      for (const message of unknown) process.stderr.write(`${message}\n`);
      return 1;
    }
    if (values.v) process.stdout.write(formatConfig(config));
    process.stdout.write('configuration OK\n');
    return 0;
  }

  if (embedded && !values.n) prepareEmbedded();
  const foreground = values.d ?? false;
  const spool = resolve(values.spool ?? (embedded ? embeddedPaths().spool : defaultSpoolDir()));
  const status = await runDaemon({
    config,
    spool,
    queueBackend,
    foreground,
    verbose: values.v?.length ?? 0,
    trace,
    // The embedded default is a private server for whoever started it,
    // root included: root's mail goes to its Maildir under ./var.
    ...(embedded && { allowRootDelivery: true }),
    ready: () => {
      if (embedded) process.stdout.write(embeddedBanner(spool));
      if (!foreground) process.stdout.write(`smtpd: running in the foreground, pid ${process.pid}, logging to stderr\n`);
    },
  });
  // The daemon has closed what it opened; if a stray handle still holds
  // the event loop, do not let it keep a stopped daemon alive.
  setTimeout(() => process.exit(status), 2_000).unref();
  return status;
}

// Run when executed (by tsx or bin/smtpd.mjs), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await smtpd(process.argv.slice(2));
}

/** The listeners whose interface, address or host name gives no address here, as `file:line: ...` messages. */
async function unknownListenAddresses(config: Config): Promise<string[]> {
  const problems: string[] = [];
  for (const decl of config.listeners) {
    if (decl.on.kind !== 'interface') continue;
    try {
      await listenerAddresses({ ...decl, on: decl.on });
    } catch (err) {
      if (!(err instanceof ListenError)) throw err;
      problems.push(err.message);
    }
  }
  return problems;
}
