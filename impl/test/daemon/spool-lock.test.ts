/**
 * One daemon per spool: a second one on the same spool refuses to start
 * and leaves the first one alone; the socket a killed daemon leaves
 * behind does not keep the next one from starting.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, startDaemon, startServing, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();

function swaks(port: number): string {
  return spawnSync('swaks', ['--server', `127.0.0.1:${port}`, '--from', 'a@example.org', '--to', 'b@example.org', '--quit-after', 'RCPT'], {
    encoding: 'utf8', timeout: 20_000,
  }).stdout;
}

describe('the spool lock', { timeout: 60_000 }, () => {
  it('refuses a second daemon on a spool in use, and takes over the socket a killed one left', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const first = await startServing(conf, spool);
    running.push(first);

    // The same spool, another port.
    const otherConf = join(dir, 'other.conf');
    writeFileSync(otherConf, `listen on 127.0.0.1 port ${await freePort()}\naction "hold" relay host smtp://127.0.0.1:9\nmatch from any for domain "example.org" action "hold"\n`);
    const second = startDaemon(['-d', '-f', otherConf, '--spool', spool]);
    running.push(second);
    expect(await second.exited).toBe(1);
    expect(second.lines.join('\n')).toContain(`another smtpd is running on the spool ${spool} (its smtpd.lock socket answers)`);
    expect(swaks(port)).toMatch(/<- {2}250 2\.1\.5/);

    process.kill(-first.pid, 'SIGKILL');
    await first.exited;
    expect(existsSync(join(spool, 'smtpd.lock'))).toBe(true);
    const third = await startServing(conf, spool);
    running.push(third);
    expect(swaks(port)).toMatch(/<- {2}250 2\.1\.5/);
  });
});
