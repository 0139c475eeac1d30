/**
 * The command line of a bench script: its options, `--help` and `-h`
 * added, parsed strictly. A wrong option prints the message and the
 * usage and exits 2; `--help` prints the usage and exits 0.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'];

export function commandLine<const O extends Options>(options: O, usage: string): Values<O> {
  let values: Values<O>;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values as Values<O>;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return values;
}
