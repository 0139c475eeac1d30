/**
 * Trace flags (`smtpd -T imsg -T smtp`): extra lines about one subsystem,
 * named as OpenSMTPD names them, so an operator's habits carry over.
 * Several flags may be given with several -T or separated by commas.
 */
export const TRACE_FLAGS = [
  'imsg', 'io', 'smtp', 'filters', 'transfer', 'bounce', 'scheduler', 'expand', 'lookup', 'table', 'stat',
  'rules', 'mproc', 'queue',
] as const;
export type TraceFlag = (typeof TRACE_FLAGS)[number];

/**
 * The flags something traces today. The others are accepted, since an
 * operator's habits and scripts carry them over from OpenSMTPD, but the
 * command line says that they print nothing yet.
 */
export const TRACED_FLAGS: readonly TraceFlag[] = ['imsg', 'smtp', 'expand', 'lookup', 'rules', 'scheduler', 'queue'];
export type TraceFlags = ReadonlySet<TraceFlag>;

export function isTraceFlag(word: string): word is TraceFlag {
  return (TRACE_FLAGS as readonly string[]).includes(word);
}

/** Parses the arguments of -T; `all` turns every flag on. Throws on an unknown flag, naming the known ones. */
export function parseTraceFlags(args: readonly string[]): Set<TraceFlag> {
  const flags = new Set<TraceFlag>();
  for (const word of args.flatMap((a) => a.split(',')).map((w) => w.trim()).filter(Boolean)) {
    if (word === 'all') TRACE_FLAGS.forEach((f) => flags.add(f));
    else if (isTraceFlag(word)) flags.add(word);
    else throw new Error(`unknown trace flag "${word}" (known: ${TRACE_FLAGS.join(', ')}, all)`);
  }
  return flags;
}
