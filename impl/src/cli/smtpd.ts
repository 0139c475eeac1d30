/**
 * smtpd [-n] [-v] [-D name=value] [-f file]
 *
 * For now, only the configuration check is built: `smtpd -n` reads the
 * file, prints "configuration OK" or every error found, and exits 0 or 1.
 * With -v it also prints the configuration back in canonical form.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatConfig, loadConfig, parseMacroOverride } from '../config/index.ts';

const USAGE = 'usage: smtpd [-nv] [-D macro=value] [-f file]';

/** Runs the command with its arguments (without the program name); returns the exit status. */
export function smtpd(argv: string[]): number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        n: { type: 'boolean', short: 'n' },
        v: { type: 'boolean', short: 'v', multiple: true },
        D: { type: 'string', short: 'D', multiple: true },
        f: { type: 'string', short: 'f' },
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

  const file = values.f ?? '/etc/smtpd.conf';
  const { config, errors } = loadConfig(file, { macros });
  if (errors.length === 0 && !values.n) {
    process.stderr.write('smtpd: the daemon is not built yet; only the configuration check works (smtpd -n)\n');
    return 2;
  }
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(`${e.toString()}\n`);
    return 1;
  }
  if (values.v) process.stdout.write(formatConfig(config));
  process.stdout.write('configuration OK\n');
  return 0;
}

// Run when executed (by tsx or bin/smtpd.mjs), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = smtpd(process.argv.slice(2));
}
