/**
 * The macros of one parse: those defined in the file (`name = "value"`)
 * and those given on the command line (`smtpd -D name=value`).
 *
 * As in OpenSMTPD, a command-line definition wins: the file may define the
 * same name, but `$name` keeps the command-line value. That lets an
 * administrator try a different address without editing the file.
 */
export class MacroTable {
  private readonly fromCommandLine = new Map<string, string>();
  private readonly fromFile = new Map<string, string>();

  constructor(commandLine: Record<string, string> = {}) {
    for (const [name, value] of Object.entries(commandLine)) this.fromCommandLine.set(name, value);
  }

  /** Defines a macro from the file; returns false when the command line overrides it. */
  define(name: string, value: string): boolean {
    this.fromFile.set(name, value);
    return !this.fromCommandLine.has(name);
  }

  /** The value `$name` expands to, or undefined if the macro is not defined (yet). */
  get(name: string): string | undefined {
    return this.fromCommandLine.get(name) ?? this.fromFile.get(name);
  }

  /** Every defined name, for "did you mean" hints. */
  names(): string[] {
    return [...new Set([...this.fromCommandLine.keys(), ...this.fromFile.keys()])];
  }
}

/** The characters a macro name may contain, so `$name` ends at the first other one. */
export const MACRO_NAME_CHAR = /[A-Za-z0-9_]/;

/** Splits a command-line `-D name=value`; undefined when there is no `=` or no name. */
export function parseMacroOverride(arg: string): [string, string] | undefined {
  const eq = arg.indexOf('=');
  if (eq <= 0) return undefined;
  return [arg.slice(0, eq), arg.slice(eq + 1)];
}
