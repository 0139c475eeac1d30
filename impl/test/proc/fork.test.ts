import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyConfig } from '../../src/config/index.ts';
import { Peer } from '../../src/proc/peer.ts';
import { ensureSystemUser } from '../../src/proc/privileges.ts';
import { forkChild } from '../../src/proc/spawn.ts';
import { Supervisor } from '../../src/proc/supervisor.ts';
import { ipcTransport } from '../../src/proc/transport.ts';
import { testChannel } from './fixtures/test-channel.ts';
import { memoryLogger } from './helpers.ts';

const entry = fileURLToPath(new URL('./fixtures/echo-child.ts', import.meta.url));
const isRoot = process.getuid?.() === 0;
const started: { kill: () => void }[] = [];

afterEach(() => {
  for (const c of started.splice(0)) c.kill();
});

function startChild(name: string, options: Parameters<typeof forkChild>[1] = {}) {
  const { log, lines } = memoryLogger();
  const proc = forkChild(name, { entry, ...options });
  started.push({ kill: () => proc.kill('SIGKILL') });
  const peer = new Peer<Record<never, never>, typeof testChannel['calls']>({
    self: 'parent', peer: name, transport: ipcTransport(proc), calls: testChannel, log, timeoutMs: 20_000,
  });
  return { proc, peer, lines };
}

/** `ps -o user=,args=` for one process. */
function ps(pid: number): string {
  return execFileSync('ps', ['-o', 'user=,args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
}

describe('forked children', { timeout: 30_000 }, () => {
  it('run TypeScript through the loader, answer over IPC, and show their name in ps', async () => {
    const { proc, peer } = startChild('lookup');
    const answer = await peer.request({ type: 'test.echo', text: 'ping' });
    expect(answer).toEqual({ text: 'ping', pid: proc.pid });
    expect(ps(proc.pid!)).toMatch(/ smtpd: lookup$/);
  });

  it('refuse a malformed request from the parent and keep serving', async () => {
    const { proc, peer } = startChild('queue');
    proc.send({ kind: 'request', id: 99, msg: { type: 'test.echo', text: ['not', 'a', 'string'] } });
    proc.send({ kind: 'request', id: 100, msg: { type: 'test.unheard-of' } });
    expect(await peer.request({ type: 'test.violations' })).toEqual({ count: 2 });
    expect((await peer.request({ type: 'test.echo', text: 'still here' })).text).toBe('still here');
  });

  it('exit when the parent closes the channel, which is also what the parent dying does', async () => {
    const { proc, peer } = startChild('control');
    await peer.request({ type: 'test.echo', text: 'x' });
    const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    peer.close();
    expect(await exited).toBe(0);
  });

  it.runIf(isRoot)('run as the unprivileged user they are forked as, with no supplementary groups', async () => {
    const { log } = memoryLogger();
    const smtpq = ensureSystemUser('_smtpq', log);
    const { proc, peer } = startChild('queue', { credentials: smtpq });
    expect(await peer.request({ type: 'test.whoami' })).toEqual({ uid: smtpq.uid, title: 'smtpd: queue' });
    expect(ps(proc.pid!)).toBe('_smtpq   smtpd: queue');
    const status = execFileSync('cat', [`/proc/${proc.pid}/status`], { encoding: 'utf8' });
    expect(status).toMatch(/^Groups:\s*$/m);
  });
});

describe('a daemon child (child.ts)', { timeout: 30_000 }, () => {
  it('starts its role when told, answers a ping with its name and title, stops, and exits 0', async () => {
    const { log } = memoryLogger();
    const supervisor = new Supervisor(log, () => {});
    const child = supervisor.spawn('crypto');
    started.push({ kill: () => child.process.kill('SIGKILL') });
    const { control } = child;
    const config = emptyConfig();
    await control.request({ type: 'proc.init', name: 'crypto', config, spool: '/nonexistent', queueBackend: 'fs', verbose: 0, trace: [], format: 'foreground', pkis: [] });
    await control.request({ type: 'proc.start' });
    const pong = await control.request({ type: 'proc.ping' });
    expect(pong).toMatchObject({ name: 'crypto', pid: child.process.pid, title: 'smtpd: crypto' });
    await supervisor.stopAll(['crypto']);
    expect(await child.exited).toBe('exited with status 0');
  });

  it('refuses to be started as another process than the one named on its command line', async () => {
    const { log } = memoryLogger();
    const child = new Supervisor(log, () => {}).spawn('lookup');
    started.push({ kill: () => child.process.kill('SIGKILL') });
    await expect(child.control.request({
      type: 'proc.init', name: 'queue', config: emptyConfig(), spool: '/x', queueBackend: 'fs', verbose: 0, trace: [], format: 'foreground', pkis: [],
    })).rejects.toThrow('this process is lookup, not queue');
  });
});

describe('supervision', { timeout: 30_000 }, () => {
  it('reports a child that exits on its own, naming it and its status', async () => {
    const { log } = memoryLogger();
    const lost: string[] = [];
    const supervisor = new Supervisor(log, (name, how) => lost.push(`${name} process ${how}`));
    const child = supervisor.spawn('queue', { entry });
    started.push({ kill: () => child.process.kill('SIGKILL') });
    const peer = new Peer<Record<never, never>, typeof testChannel['calls']>({
      self: 'parent', peer: 'queue', transport: ipcTransport(child.process), calls: testChannel, log, timeoutMs: 20_000,
    });
    await peer.request({ type: 'test.exit', status: 3 });
    expect(await child.exited).toBe('exited with status 3');
    expect(lost).toEqual(['queue process exited with status 3']);
  });

  it('does not report exits once the daemon is stopping', async () => {
    const { log } = memoryLogger();
    const lost: string[] = [];
    const supervisor = new Supervisor(log, (name) => lost.push(name));
    const child = supervisor.spawn('scheduler', { entry });
    started.push({ kill: () => child.process.kill('SIGKILL') });
    supervisor.expectExits();
    child.process.kill('SIGKILL');
    expect(await child.exited).toBe('killed by signal SIGKILL');
    expect(lost).toEqual([]);
  });
});
