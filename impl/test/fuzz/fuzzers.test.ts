/**
 * The fuzzers of impl/fuzz/ are run by hand, for minutes, with a new seed
 * each time. Here each runs briefly with a fixed seed, so that CI notices
 * when a fuzzer's model falls behind the code it checks: the SMTP
 * fuzzer's once reported 177 false failures in 3,747 cases after two
 * changes to what the engine stores, and nobody ran it for days.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fuzz = join(import.meta.dirname, '..', '..', 'fuzz');

async function fuzzer(file: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(fuzz, file), ...args], { timeout: 90_000 });
  return stdout + stderr;
}

describe('the fuzzers, briefly, with a fixed seed', { timeout: 120_000 }, () => {
  it('smtp: the engine over TCP, every case run twice, cut differently', async () => {
    expect(await fuzzer('smtp.ts', ['--seed', '1', '--cases', '400', '--seconds', '60'])).toMatch(/smtp fuzz: seed 1, 400 cases \(each run twice\), 0 failed/);
  });

  it('config: parser, checker, formatter', async () => {
    expect(await fuzzer('config.ts', ['--seed', '1', '--cases', '2000'])).toMatch(/config fuzz: seed 1, 2000 cases, 0 failed/);
  });

  it('disk: what the queue and the tables read back from files', async () => {
    expect(await fuzzer('disk.ts', ['--seed', '1', '--cases', '200'])).toMatch(/disk fuzz: seed 1, 200 cases, 0 failed/);
  });
});
