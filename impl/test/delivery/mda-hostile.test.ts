/**
 * Commands that misbehave, run by runCommand() as an `mda` or a `|
 * command` delivery is: ones that print in a muddle, do not read the
 * message, print megabytes, leave children behind, or never end.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCommand, type CommandOptions } from '../../src/delivery/mda.ts';

const OPTIONS: CommandOptions = { env: { PATH: '/usr/bin:/bin' }, cwd: '/' };
const nothing = () => Readable.from([]);

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
