/**
 * prepareSpool, called directly: what the first start makes, and what it
 * refuses to trust.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/index.ts';
import { prepareSpool } from '../../src/parent/spool.ts';
import type { Accounts } from '../../src/proc/privileges.ts';

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
  chmodSync(dir, 0o755);
  dirs.push(dir);
  const lines: string[] = [];
  const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => lines.push(l) });
  return { dir, lines, log };
}

const me = { user: 'me', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const unseparated: Accounts = { smtpd: me, smtpq: me, separated: false };
const mode = (path: string) => statSync(path).mode & 0o7777;

describe('prepareSpool', () => {
  it.runIf(isRoot)('makes missing parents passable, so that the queue user it hands the spool to can reach it', async () => {
    const { dir, log } = setup();
    const nobody = { user: 'nobody', uid: 65534, gid: 65534 };
    const spool = join(dir, 'a', 'b', 'spool');
    await prepareSpool(spool, { smtpd: nobody, smtpq: nobody, separated: true }, log);
    expect(mode(join(dir, 'a')) & 0o001).toBe(0o001);
    expect(mode(join(dir, 'a', 'b')) & 0o001).toBe(0o001);
    expect(mode(spool)).toBe(0o700);
    expect(statSync(spool).uid).toBe(65534);
  });

  it('refuses a spool others may write in, naming the mode and what to do', async () => {
    const { dir, log } = setup();
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    chmodSync(spool, 0o777);
    await expect(prepareSpool(spool, unseparated, log)).rejects.toThrow(
      `the spool ${spool} has mode 777: users other than its owner may write in it, and may have put files there; ` +
        `check what it holds, then chmod 700 ${spool}`,
    );
    chmodSync(spool, 0o770);
    await expect(prepareSpool(spool, unseparated, log)).rejects.toThrow('has mode 770');
  });

  it('makes a spool others may only read 0700, and says so', async () => {
    const { dir, lines, log } = setup();
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    chmodSync(spool, 0o755);
    await prepareSpool(spool, unseparated, log);
    expect(mode(spool)).toBe(0o700);
    expect(lines).toContain(`info: the spool ${spool} had mode 755: making it 700\n`);
  });
});
