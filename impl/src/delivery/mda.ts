/**
 * Running a command with the message on its standard input: the `mda`
 * method, `| command` deliveries from aliases and ~/.forward, and the
 * `mda wrapper` around either. As OpenSMTPD does it (smtpd.c forkmda(),
 * mda_unpriv.c):
 *
 *  - the command line goes to `/bin/sh -c`, in the user's home (or `/`
 *    if the home is missing), in a new session, with a clean
 *    environment: PATH, HOME, USER, LOGNAME, SHELL=/bin/sh, and the
 *    envelope as DOMAIN, LOCAL, RECIPIENT, SENDER and EXTENSION;
 *  - stdout and stderr are kept together, and the last line the command
 *    printed goes into the reason: that is where MDAs say what went wrong;
 *  - after a time limit (OpenSMTPD's alarm(300): 5 minutes) the command's
 *    process group is terminated and the delivery is a temporary failure;
 *  - the exit status decides, as smtpd.c's SIGCHLD handler does:
 *
 *        0                            ok (if it read the whole message)
 *        75 EX_TEMPFAIL, 71 EX_OSERR  tempfail
 *        any other status             permfail (the sender gets a bounce)
 *        killed by a signal           tempfail
 *
 * The message reaches the command with Unix line ends, as OpenSMTPD's
 * queue stores it; procmail, maildrop and friends expect nothing else.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { finished, pipeline } from 'node:stream/promises';
import { duration, oneLine } from './failure.ts';
import { encodeLines } from './lines.ts';
import { expandFormat, type FormatValues } from './mda-format.ts';
import type { DeliveryOutcome } from './types.ts';

/** sysexits(3), as OpenSMTPD's mda_sysexit_to_str() names them in its log lines. */
export const SYSEXITS: Readonly<Record<number, string>> = {
  64: 'command line usage error',
  65: 'data format error',
  66: 'cannot open input',
  67: 'user unknown',
  68: 'host name unknown',
  69: 'service unavailable',
  70: 'internal software error',
  71: 'system resource problem',
  72: 'critical OS file missing',
  73: "can't create user output file",
  74: 'input/output error',
  75: 'temporary failure',
  76: 'remote error in protocol',
  77: 'permission denied',
  78: 'local configuration error',
};

const EX_OSERR = 71;
const EX_TEMPFAIL = 75;

/**
 * OpenBSD's _PATH_DEFPATH, which OpenSMTPD gives every MDA, without
 * X11R6: the system directories, then /usr/local where MDAs are installed.
 */
export const MDA_PATH = '/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin:/usr/local/sbin';

/** What mda_unpriv.c puts in an MDA's environment, and nothing else. */
export interface MdaEnvironmentInput {
  /** The account the command runs as. */
  user: { name: string; home: string };
  sender: { user: string; domain: string } | null;
  /** The recipient as the client wrote it. */
  rcpt: { user: string; domain: string };
  /** The recipient after expansion. */
  dest: { user: string; domain: string };
  subaddress?: string;
}

export function mdaEnvironment(input: MdaEnvironmentInput): Record<string, string> {
  return {
    PATH: MDA_PATH,
    DOMAIN: input.rcpt.domain,
    HOME: input.user.home,
    RECIPIENT: `${input.dest.user}@${input.dest.domain}`,
    SHELL: '/bin/sh',
    LOCAL: input.rcpt.user,
    LOGNAME: input.user.name,
    USER: input.user.name,
    SENDER: input.sender && (input.sender.user || input.sender.domain) ? `${input.sender.user}@${input.sender.domain}` : '',
    ...(input.subaddress && { EXTENSION: input.subaddress }),
  };
}

/**
 * The command line to run: the command with its `%{}` specifiers
 * expanded for a shell, then, if the action has a wrapper, the wrapper
 * expanded with `%{mda}` set to that command. Throws a FormatError.
 */
export function mdaCommandLine(command: string, values: FormatValues, wrapper?: string): string {
  const expanded = expandFormat(command, values, 'command');
  if (wrapper === undefined) return expanded;
  return expandFormat(wrapper, { ...values, mda: expanded }, 'command');
}

export interface CommandOptions {
  env: Record<string, string>;
  /** The working directory: the user's home; `/` if it does not exist, as forkmda() falls back. */
  cwd: string;
  /** Default 300 000 (OpenSMTPD's alarm(300)). */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL at the time limit. Default 2000. */
  killGraceMs?: number;
  /** How the command is named in reasons: `mda` or `command`. */
  label?: string;
}

/** How a command ended, before it is judged. */
export interface CommandExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The command read the whole message (its stdin did not close early). */
  inputComplete: boolean;
  /** The last line of stdout and stderr, if any. */
  lastLine?: string;
}

// #region command-outcome
/** The exit-status table of the header comment, as a pure function. */
export function commandOutcome(exit: CommandExit, label = 'mda', timeoutMs = 300_000): DeliveryOutcome {
  const said = exit.lastLine ? `: "${exit.lastLine}"` : '';
  if (exit.timedOut) return { result: 'tempfail', reason: `${label} timed out after ${duration(timeoutMs)}${said}` };
  if (exit.signal) return { result: 'tempfail', reason: `${label} terminated by signal ${exit.signal}${said}` };
  if (exit.code === 0) {
    if (!exit.inputComplete) return { result: 'tempfail', reason: `${label} exited before reading the whole message${said}` };
    return { result: 'ok' };
  }
  const code = exit.code ?? -1;
  const name = SYSEXITS[code] ? ` (${SYSEXITS[code]})` : '';
  const result = code === EX_TEMPFAIL || code === EX_OSERR ? 'tempfail' : 'permfail';
  return { result, reason: `${label} exited with status ${code}${name}${said}` };
}
// #endregion command-outcome

/** Keeps the last few kilobytes a command printed. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = 8192) {}

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length;
  }

  /** The last non-empty line, made printable (control characters as `\xNN`), for a one-line reason. */
  lastLine(): string | undefined {
    const lines = Buffer.concat(this.chunks).toString('utf8').split('\n').map((l) => l.replace(/\r$/, '').trim());
    const last = lines.filter((l) => l !== '').pop();
    if (last === undefined) return undefined;
    return oneLine(last.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`), 200);
  }
}

/**
 * The process groups of the commands running now. If this process ends
 * first (the agent's socket closed, the daemon was killed), they go with
 * it: a command left running would finish a delivery that is already
 * counted as failed, and the retry would deliver the message again.
 */
const runningGroups = new Set<number>();
let reaperInstalled = false;

function trackGroup(pid: number): void {
  if (!reaperInstalled) {
    reaperInstalled = true;
    process.once('exit', () => {
      for (const group of runningGroups) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    });
  }
  runningGroups.add(pid);
}

/**
 * Runs `/bin/sh -c commandLine` with `input` (already in the shape the
 * command should read) on its stdin. Never throws for a delivery problem.
 */
export async function runCommand(commandLine: string, input: AsyncIterable<unknown>, options: CommandOptions): Promise<DeliveryOutcome> {
  const label = options.label ?? 'mda';
  const timeoutMs = options.timeoutMs ?? 300_000;
  const cwd = await stat(options.cwd).then((s) => (s.isDirectory() ? options.cwd : '/'), () => '/');

  // detached: the command leads its own process group (setsid(), as
  // forkmda() does), so that a time limit stops its children too.
  // stdout and stderr must be one pipe, as forkmda() makes them one
  // file: read from two, what came last is a guess (the poll says which
  // pipe is ready, not which was written first), and the reason would
  // quote "processing..." instead of the error printed after it. Node
  // makes a pipe for each, so the shell joins them before the command
  // runs; the stderr pipe still carries what the shell says before
  // that, a syntax error in the command line.
  const child = spawn('/bin/sh', ['-c', `exec 2>&1; ${commandLine}`], { cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const group = child.pid;
  if (group !== undefined) {
    trackGroup(group);
    child.once('exit', () => runningGroups.delete(group));
  }
  const output = new OutputTail();
  child.stdout.on('data', (chunk: Buffer) => output.add(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.add(chunk));
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: Error }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ error }));
  });

  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), options.killGraceMs ?? 2000);
  }, timeoutMs);

  // If the message cannot be read to its end, the command must not see
  // an end of file and deliver half a message: kill it first.
  let readError: Error | undefined;
  async function* guarded() {
    try {
      yield* input;
    } catch (e) {
      readError = e as Error;
      killGroup('SIGKILL');
      throw e;
    }
  }
  const feeding = new AbortController();
  const fed = pipeline(guarded(), child.stdin, { signal: feeding.signal }).then(() => true, () => false);

  const ended = await exited;
  clearTimeout(timer);
  clearTimeout(killTimer);
  // The shell is gone; what it left running past the time limit goes too.
  if (timedOut) killGroup('SIGKILL');
  if ('error' in ended) {
    feeding.abort();
    return { result: 'tempfail', reason: `${label}: cannot run /bin/sh: ${oneLine(ended.error.message)}` };
  }
  // The command is gone: its stdin pipe is broken or finished. Give the
  // feeding a moment to notice, and the output pipes to drain; a
  // grandchild that kept them open is not waited for.
  const inputComplete = await Promise.race([fed, delay(1000).then(() => false)]);
  feeding.abort();
  const drained = (stream: NodeJS.ReadableStream) => finished(stream).catch(() => {});
  await Promise.race([Promise.all([drained(child.stdout), drained(child.stderr)]), delay(200)]);
  child.stdout.destroy();
  child.stderr.destroy();

  if (readError) return { result: 'tempfail', reason: `${label}: error reading the message: ${oneLine(readError.message)}` };
  const lastLine = output.lastLine();
  return commandOutcome({ ...ended, timedOut, inputComplete, ...(lastLine !== undefined && { lastLine }) }, label, timeoutMs);
}

/** The message as a command reads it: Unix line ends, the bytes otherwise untouched. */
export function commandInput(content: AsyncIterable<unknown>): AsyncIterable<Buffer> {
  return encodeLines(content, { eol: '\n' });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
