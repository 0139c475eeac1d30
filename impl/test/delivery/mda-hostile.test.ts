/**
 * Commands that misbehave, run by runCommand() as an `mda` or a `|
 * command` delivery is: ones that print in a muddle, do not read the
 * message, print megabytes, leave children behind, or never end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { commandOutcome, runCommand, type CommandOptions } from '../../src/delivery/mda.ts';
import { tempDirPerTest } from './helpers.ts';

/** A time limit well under five minutes: a test that goes wrong leaves no command running for long. */
const OPTIONS: CommandOptions = { env: { PATH: '/usr/bin:/bin' }, cwd: '/', timeoutMs: 10_000 };
const nothing = () => Readable.from([]);
/** Two megabytes: far more than a pipe holds, so a command that does not read it makes the writes fail. */
const BIG = Buffer.from(`${'x'.repeat(1023)}\n`.repeat(2048));
const big = () => Readable.from([BIG]);

/** Whether a process is still there, a zombie waiting for its parent's wait() aside. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(pid: number, ms = 2000): Promise<boolean> {
  for (const deadline = Date.now() + ms; alive(pid) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

/** Holds this process, timers and all, for `ms`: whatever the command does meanwhile is all there at the next poll. */
function busy(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('what a command printed', () => {
  it.each([
    ['stderr, then stdout', 'echo "dave is over quota" >&2; echo "see the log"; exit 73', 'see the log'],
    ['stdout, then stderr', 'echo "processing"; echo "dave is over quota" >&2; exit 73', 'dave is over quota'],
  ])('the reason quotes the line written last, %s', async (_, command, last) => {
    // The command prints both lines while this process is busy, so both
    // are there when it looks. Read from a pipe each, which is read first
    // was up to the poll, and it was the stdout pipe nearly every time.
    for (let i = 0; i < 3; i++) {
      const running = runCommand(command, nothing(), OPTIONS);
      await new Promise((r) => setTimeout(r, 0));
      busy(200);
      expect(await running).toEqual({ result: 'permfail', reason: `mda exited with status 73 (can't create user output file): "${last}"` });
    }
  });
});

describe('how a command ends', () => {
  it('a command that does not exist exits 127 through the shell: permanent, as in OpenSMTPD, and the shell says why', async () => {
    expect(await runCommand('/usr/local/bin/no-such-mda -d bob', nothing(), OPTIONS)).toEqual({
      result: 'permfail', reason: expect.stringMatching(/^mda exited with status 127: "\/bin\/sh: .*\/usr\/local\/bin\/no-such-mda: not found"$/),
    });
  });

  it('every sysexits(3) status is permanent but EX_OSERR and EX_TEMPFAIL, as smtpd.c maps them', async () => {
    const temporary = [71, 75];
    for (let code = 64; code <= 78; code++) {
      const outcome = commandOutcome({ code, signal: null, timedOut: false, inputComplete: true });
      expect([code, outcome.result]).toEqual([code, temporary.includes(code) ? 'tempfail' : 'permfail']);
    }
  });
});

describe('a command and the message', () => {
  const freshDir = tempDirPerTest('saf-mda-');

  it('one that does not read it ends on its exit status; the failed writes cost nothing else', async () => {
    // Each run writes into a pipe whose reader is gone: EPIPE, which must
    // stay an outcome, not an error that ends the agent.
    expect(await runCommand('exit 0', big(), OPTIONS)).toEqual({ result: 'tempfail', reason: 'mda exited before reading the whole message' });
    expect(await runCommand('exit 75', big(), OPTIONS)).toEqual({ result: 'tempfail', reason: 'mda exited with status 75 (temporary failure)' });
    expect(await runCommand('echo "no such mailbox"; exit 67', big(), OPTIONS))
      .toEqual({ result: 'permfail', reason: 'mda exited with status 67 (user unknown): "no such mailbox"' });
  });

  it('one that reads it slowly gets all of it, at its own pace', async () => {
    const dir = freshDir();
    // 64 KiB a twentieth of a second: about two seconds for the message.
    const command = `while [ "$(dd bs=65536 count=1 iflag=fullblock status=none | tee -a "${dir}/out" | wc -c)" -gt 0 ]; do sleep 0.05; done`;
    expect(await runCommand(command, big(), OPTIONS)).toEqual({ result: 'ok' });
    expect(readFileSync(join(dir, 'out')).equals(BIG)).toBe(true);
  });

  it('megabytes printed are read as they come and let go; the last line, cut short, is the reason', async () => {
    const started = Date.now();
    const command = 'cat >/dev/null; head -c 20000000 /dev/zero | tr "\\0" y >&2; echo; head -c 5000 /dev/zero | tr "\\0" z; echo; exit 75';
    const outcome = await runCommand(command, big(), OPTIONS);
    expect(outcome).toEqual({ result: 'tempfail', reason: expect.stringMatching(/^mda exited with status 75 \(temporary failure\): "z{197}\.\.\."$/) });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('what a command leaves running', () => {
  const freshDir = tempDirPerTest('saf-mda-');

  it('a child that keeps stdout and stderr open does not hold the delivery: it ends when the command exits', async () => {
    const dir = freshDir();
    const started = Date.now();
    const outcome = await runCommand(`cat >/dev/null; sleep 30 & echo $! > "${dir}/pid"; echo stored`, big(), OPTIONS);
    const child = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    try {
      expect(outcome).toEqual({ result: 'ok' });
      expect(Date.now() - started).toBeLessThan(1500);
      // As with OpenSMTPD, a command that exits in time has its children left alone.
      expect(alive(child)).toBe(true);
    } finally {
      process.kill(child, 'SIGKILL');
    }
  });

  it('at the time limit, a command and a child that ignore SIGTERM are killed all the same, and none is left', async () => {
    const dir = freshDir();
    const command = `trap "" TERM; cat >/dev/null; sleep 30 & echo $! > "${dir}/pid"; echo $$ > "${dir}/shell"; wait`;
    const started = Date.now();
    const outcome = await runCommand(command, big(), { ...OPTIONS, timeoutMs: 300, killGraceMs: 200 });
    expect(outcome).toEqual({ result: 'tempfail', reason: 'mda timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(2000);
    for (const file of ['shell', 'pid']) {
      expect(existsSync(join(dir, file))).toBe(true);
      expect(await gone(Number(readFileSync(join(dir, file), 'utf8')))).toBe(true);
    }
  });
});
