/**
 * smtpctl — control the mail server, and the tools that come with it
 * (smtpctl(8)).
 *
 *   smtpctl encrypt [string]
 *
 * A command is a sequence of words (`encrypt`, and later `show queue`,
 * `pause smtp`...) followed by its arguments. As in OpenSMTPD, each word
 * may be shortened to any prefix that no other word in its place shares:
 * `smtpctl enc secret` is `smtpctl encrypt secret`. A command is one entry
 * of COMMANDS; the ones that talk to the running daemon will add entries
 * whose `run` opens the control socket.
 */
import { pathToFileURL } from 'node:url';
import { hashPassword } from '../crypto/password.ts';

/** Where smtpctl reads and writes; tests pass their own. */
export interface CtlIo {
  stdin: AsyncIterable<Uint8Array>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CtlIo = {
  stdin: process.stdin,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

interface Command {
  /** The words that name the command. */
  words: readonly string[];
  /** How many arguments may follow them. */
  args: { min: number; max: number };
  /** Runs the command; returns the exit status. */
  run: (args: string[], io: CtlIo) => Promise<number>;
}

const COMMANDS: readonly Command[] = [{ words: ['encrypt'], args: { min: 0, max: 1 }, run: encrypt }];

/** OpenSMTPD's smtpctl exits with 255 when it cannot make sense of the command line. */
const USAGE_STATUS = 255;

/** Runs smtpctl with the arguments after the program name; returns the exit status. */
export async function smtpctl(argv: string[], io: CtlIo = processIo): Promise<number> {
  const parsed = parseCommand(argv);
  if ('possibilities' in parsed) {
    io.stderr(`possibilities are:\n${parsed.possibilities.map((p) => `${p}\n`).join('')}`);
    return USAGE_STATUS;
  }
  const { command, args } = parsed;
  if (args.length < command.args.min || args.length > command.args.max) {
    io.stderr('invalid command\n');
    return USAGE_STATUS;
  }
  return command.run(args, io);
}

type Parsed = { command: Command; args: string[] } | { possibilities: string[] };

/**
 * Finds the command `argv` starts with, one word at a time. When a word
 * matches no command, or the prefix of several, the answer is the list of
 * what could have come there, as smtpctl prints it.
 */
function parseCommand(argv: string[]): Parsed {
  let candidates = COMMANDS;
  for (let depth = 0; ; depth++) {
    const complete = candidates.find((c) => c.words.length === depth);
    const longer = candidates.filter((c) => c.words.length > depth);
    const token = argv[depth];
    const words = [...new Set(longer.map((c) => c.words[depth]!))];
    const exact = words.find((w) => w === token);
    const prefixed = token === undefined ? [] : words.filter((w) => w.startsWith(token));
    const word = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);

    if (word === undefined) {
      if (complete) return { command: complete, args: argv.slice(depth) };
      const shown = token === undefined || prefixed.length === 0 ? longer : longer.filter((c) => prefixed.includes(c.words[depth]!));
      return { possibilities: [...new Set(shown.map((c) => c.words.slice(0, depth + 1).join(' ')))] };
    }
    candidates = longer.filter((c) => c.words[depth] === word);
  }
}

// #region encrypt-command
/**
 * `smtpctl encrypt [string]`: prints the crypt(3) hash of `string`, for a
 * credentials table. Without it, hashes each line of standard input, so
 * that the password need not appear on a command line, where `ps` and the
 * shell's history would show it. A line is every byte up to a newline,
 * the newline excluded, as getline(3) reads it: a `\r` stays part of the
 * password, and a last line without a newline still counts.
 */
async function encrypt(args: string[], io: CtlIo): Promise<number> {
  const [string] = args;
  if (string !== undefined) {
    io.stdout(`${hashPassword(string)}\n`);
    return 0;
  }
  for await (const line of lines(io.stdin)) io.stdout(`${hashPassword(line)}\n`);
  return 0;
}
// #endregion encrypt-command

/** The lines of a byte stream, as bytes, without their newline. */
async function* lines(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = Buffer.concat([pending, chunk]);
    for (let newline = pending.indexOf(0x0a); newline !== -1; newline = pending.indexOf(0x0a)) {
      yield pending.subarray(0, newline);
      pending = pending.subarray(newline + 1);
    }
  }
  if (pending.length > 0) yield pending;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await smtpctl(process.argv.slice(2));
}
