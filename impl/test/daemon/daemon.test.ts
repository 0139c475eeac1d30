import { describe, expect, it } from 'vitest';
import {
  committedContent, Dialog, freePort, processGroup, refused, sendOne, startDaemon, startServing, workDir, type RunningDaemon,
  cleanUpAfterEach,
} from './helpers.ts';

const isRoot = process.getuid?.() === 0;
const { running, dirs } = cleanUpAfterEach();

async function serve() {
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  const daemon = await startServing(conf, spool);
  running.push(daemon);
  return { port, spool, daemon };
}

describe('smtpd -d', { timeout: 60_000 }, () => {
  it('runs the eight processes, each named in ps and, as root, as its user', async () => {
    const { daemon } = await serve();
    const table = processGroup(daemon.pid).map((p) => `${p.user} ${p.args}`).sort();
    const expected = [
      'root smtpd: parent',
      '_smtpd smtpd: control', '_smtpd smtpd: crypto', '_smtpd smtpd: dispatcher', '_smtpd smtpd: lookup',
      '_smtpd smtpd: scheduler', '_smtpd smtpd: smtp', '_smtpq smtpd: queue',
    ];
    if (isRoot) expect(table).toEqual(expected.sort());
    else expect(table.map((l) => l.replace(/^\S+ /, ''))).toEqual(expected.map((l) => l.replace(/^\S+ /, '')).sort());
  });

  it('accepts a message and has it in the spool when it says 250; logs the session', async () => {
    const { port, spool, daemon } = await serve();
    const reply = sendOne(port, 'first-message-7f3a');
    expect(reply).toMatch(/^250 2\.0\.0 [0-9a-f]{8} Message accepted for delivery$/);
    expect(committedContent(spool)).toContain('token first-message-7f3a');
    await daemon.waitFor(/^[0-9a-f]{16} smtp disconnected reason=quit$/);
    expect(daemon.lines.some((l) => /^[0-9a-f]{16} smtp connected address=127\.0\.0\.1 /.test(l))).toBe(true);
  });

  it('refuses a recipient the rules do not accept, with the reply the lookup process gives', async () => {
    const { port } = await serve();
    const dialog = await Dialog.open(port);
    await dialog.send('EHLO client.example.org');
    expect(await dialog.send('MAIL FROM:<alice@example.org>')).toMatch(/^250 /);
    expect(await dialog.send('RCPT TO:<eve@example.net>')).toBe('550 Invalid recipient: <eve@example.net>');
    expect(await dialog.send('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
    dialog.end();
  });

  it('drains on SIGTERM: refuses new clients, lets a transaction finish, stops the children, exits 0', async () => {
    const { port, spool, daemon } = await serve();
    const dialog = await Dialog.open(port);
    await dialog.send('EHLO client.example.org');
    await dialog.send('MAIL FROM:<alice@example.org>');
    process.kill(daemon.pid, 'SIGTERM');
    await daemon.waitFor(/^info: SIGTERM received: stopping$/);
    let closedToNewClients = false;
    for (let i = 0; i < 50 && !closedToNewClients; i++) {
      closedToNewClients = await refused(port);
      if (!closedToNewClients) await new Promise((r) => setTimeout(r, 100));
    }
    expect(closedToNewClients).toBe(true);
    expect(await dialog.send('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
    expect(await dialog.send('DATA')).toMatch(/^354 /);
    expect(await dialog.send('Subject: late\r\n\r\ntoken drained-9c1e\r\n.')).toMatch(/^250 2\.0\.0 /);
    expect(await dialog.send('NOOP')).toMatch(/^421 4\.3\.2 .* Service shutting down, closing channel$/);
    await dialog.closed;
    expect(await daemon.exited).toBe(0);
    expect(daemon.lines.at(-1)).toBe('info: smtpd exiting');
    expect(committedContent(spool)).toContain('token drained-9c1e');
    expect(processGroup(daemon.pid)).toEqual([]);
  });

  it('goes down whole when a child dies, with a line naming it, and exits 1', async () => {
    const { daemon } = await serve();
    const queue = processGroup(daemon.pid).find((p) => p.args === 'smtpd: queue');
    expect(queue).toBeDefined();
    process.kill(queue!.pid, 'SIGKILL');
    expect(await daemon.exited).toBe(1);
    expect(daemon.lines).toContain('smtpd: queue process killed by signal SIGKILL; shutting down');
    expect(daemon.lines.at(-1)).toBe('info: smtpd exiting');
    await new Promise((r) => setTimeout(r, 200));
    expect(processGroup(daemon.pid)).toEqual([]);
  });

  it('serves a client that connected while the children were starting', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const daemon = startDaemon(['-d', '-v', '-f', conf, '--spool', spool]);
    running.push(daemon);
    await daemon.waitFor(/^debug: listening on 127\.0\.0\.1 port \d+$/);
    const early = await Dialog.open(port); // resolves at the 220, which only smtp can send
    await daemon.waitFor(/^debug: smtpd: 1 client\(s\) held during start-up handed to smtp$/);
    expect(await early.send('EHLO early.example.org')).toMatch(/^250-/);
    early.end();
  });

  it('logs SIGHUP and keeps running', async () => {
    const { port, daemon } = await serve();
    process.kill(daemon.pid, 'SIGHUP');
    await daemon.waitFor(/^info: SIGHUP received: reloading is not supported yet; nothing changed$/);
    expect(sendOne(port, 'after-hup')).toMatch(/^250 /);
  });
});
