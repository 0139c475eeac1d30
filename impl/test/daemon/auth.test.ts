/**
 * AUTH in the real daemon, with real clients: swaks, Python's smtplib and
 * openssl s_client, over STARTTLS and smtps, with RSA and ECDSA pkis made
 * by openssl at test time, against credentials tables whose hashes come
 * from our own `smtpctl encrypt`. One daemon serves every listener, so
 * that the file pays for one start.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/password.ts';
import { makeCertificates, type TestCertificates } from '../smtp/certs.ts';
import {
  committedContent, Dialog, freePort, repo, startDaemon, startServing, workDir, type RunningDaemon,
} from './helpers.ts';

const smtpctlBin = join(repo, 'impl', 'bin', 'smtpctl.mjs');
const makemapBin = join(repo, 'impl', 'bin', 'makemap.mjs');

/**
 * Two users; bob's password has a space and a non-ASCII letter, to show
 * they cross intact (swaks sends it as UTF-8; smtplib refuses non-ASCII
 * in PLAIN, so the Python client logs in as alice).
 */
const ALICE = { user: 'alice', password: 'correct-horse-7' };
const BOB = { user: 'bob', password: 'bätterie staple' };
/** A user whose hash takes about a second to check (sha512-crypt with 400,000 rounds). */
const SLOW = { user: 'slow', password: 'patience' };

let certs: TestCertificates;
let daemon: RunningDaemon;
let dir: string;
let spool: string;
/** Listeners: STARTTLS with the RSA pki (auth-optional), STARTTLS with the ECDSA pki, tls-require, smtps, and one on a db table. */
const port = { rsa: 0, ecdsa: 0, required: 0, smtps: 0, db: 0 };

/** `smtpctl encrypt`, the password on standard input as the manual advises. */
function encrypt(password: string): string {
  return execFileSync(process.execPath, [smtpctlBin, 'encrypt'], { input: `${password}\n`, encoding: 'utf8' }).trim();
}

beforeAll(async () => {
  certs = makeCertificates();
  for (const name of Object.keys(port) as (keyof typeof port)[]) port[name] = await freePort();
  ({ dir, spool } = workDir(port.rsa));
  const creds = join(dir, 'creds');
  writeFileSync(creds, `${ALICE.user} ${encrypt(ALICE.password)}\n${BOB.user} ${encrypt(BOB.password)}\n` +
    `${SLOW.user} ${hashPassword(SLOW.password, { rounds: 400_000 })}\n`);
  execFileSync(process.execPath, [makemapBin, '-o', `${creds}.db`, creds], { stdio: 'pipe' });
  const conf = join(dir, 'smtpd.conf');
  writeFileSync(conf, [
    `pki rsa.mx.test cert "${certs.rsa.certFile}"`,
    `pki rsa.mx.test key "${certs.rsa.keyFile}"`,
    `pki ecdsa.mx.test cert "${certs.ecdsa.certFile}"`,
    `pki ecdsa.mx.test key "${certs.ecdsa.keyFile}"`,
    `table creds file:${creds}`,
    `table dbcreds db:${creds}.db`,
    `listen on 127.0.0.1 port ${port.rsa} tls pki rsa.mx.test auth-optional <creds>`,
    `listen on 127.0.0.1 port ${port.ecdsa} tls pki ecdsa.mx.test auth <creds>`,
    `listen on 127.0.0.1 port ${port.required} tls-require pki rsa.mx.test auth <creds>`,
    `listen on 127.0.0.1 port ${port.smtps} smtps pki rsa.mx.test auth <creds>`,
    `listen on 127.0.0.1 port ${port.db} tls pki rsa.mx.test auth <dbcreds>`,
    'action "local" relay host smtp://127.0.0.1:9',
    'action "relay" relay',
    'match from any for domain "example.org" action "local"',
    'match auth from any for any action "relay"',
    '',
  ].join('\n'));
  daemon = await startServing(conf, spool);
}, 60_000);

afterAll(() => {
  if (daemon) {
    try {
      process.kill(-daemon.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  certs?.remove();
});

/** Runs swaks to completion; its transcript, whatever its exit status. */
function swaks(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--server', '127.0.0.1', '--helo', 'client.example.org', '--from', 'alice@example.org', ...args], {
    encoding: 'utf8', timeout: 20_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const login = (who: { user: string; password: string }, mechanism: 'PLAIN' | 'LOGIN') =>
  ['--auth', mechanism, '--auth-user', who.user, '--auth-password', who.password];

describe('AUTH in the daemon', { timeout: 30_000 }, () => {
  it.each([
    ['PLAIN', 'rsa'],
    ['LOGIN', 'rsa'],
    ['PLAIN', 'ecdsa'],
    ['LOGIN', 'ecdsa'],
  ] as const)('AUTH %s over STARTTLS with the %s pki (swaks)', (mechanism, pki) => {
    const who = mechanism === 'PLAIN' ? ALICE : BOB;
    const { status, out } = swaks(['--port', String(port[pki]), '--tls', ...login(who, mechanism), '--quit-after', 'AUTH']);
    expect(out).toContain('<-  220 2.0.0 Ready to start TLS');
    expect(out).toMatch(/=== TLS started with cipher TLSv1\.[23]:/);
    expect(out).toContain(`=== TLS peer DN="/CN=${pki}.mx.test"`);
    expect(out).toContain('<~  235 2.0.0 Authentication succeeded');
    expect(status).toBe(0);
  });

  it('answers RCPT TO in other sessions while a slow password is being checked', () => {
    // One session logs in as the user with the slow hash; 0.2 s later another asks lookup about a recipient.
    const script = `
import json, smtplib, ssl, sys, threading, time
port = int(sys.argv[1])
took = {}
def login():
    s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.org', timeout=30)
    s.starttls(context=ssl._create_unverified_context())
    t = time.monotonic(); s.login('${SLOW.user}', '${SLOW.password}'); took['auth'] = time.monotonic() - t
    s.quit()
def rcpt():
    time.sleep(0.2)
    s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.org', timeout=30)
    s.ehlo()
    code, _ = s.mail('alice@example.org')
    took['mail'] = code
    t = time.monotonic(); code, _ = s.rcpt('bob@example.org'); took['rcpt'] = time.monotonic() - t
    took['rcptCode'] = code
    s.quit()
threads = [threading.Thread(target=login), threading.Thread(target=rcpt)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(took))
`;
    const took = JSON.parse(execFileSync('python3', ['-c', script, String(port.rsa)], { encoding: 'utf8', timeout: 30_000 })) as Record<string, number>;
    expect(took).toMatchObject({ mail: 250, rcptCode: 250 });
    expect(took.auth).toBeGreaterThan(0.5);
    expect(took.rcpt).toBeLessThan(0.25);
  });

  it('logs each AUTH as OpenSMTPD does, with the user and the result, never the password', async () => {
    await daemon.waitFor(/^[0-9a-f]{16} smtp authentication user=alice result=ok$/);
    await daemon.waitFor(/^[0-9a-f]{16} smtp authentication user=bob result=ok$/);
    const all = daemon.lines.join('\n');
    for (const secret of [ALICE.password, BOB.password, Buffer.from(`\0${ALICE.user}\0${ALICE.password}`).toString('base64')]) {
      expect(all).not.toContain(secret);
    }
  });

  it('answers a wrong password, and an unknown user, with 535, and logs permfail', async () => {
    const wrong = swaks(['--port', String(port.rsa), '--tls', ...login({ user: 'alice', password: 'wrong' }, 'PLAIN'), '--quit-after', 'AUTH']);
    expect(wrong.out).toContain('<~* 535 Authentication failed');
    expect(wrong.status).not.toBe(0);
    const unknown = swaks(['--port', String(port.ecdsa), '--tls', ...login({ user: 'mallory', password: 'x' }, 'LOGIN'), '--quit-after', 'AUTH']);
    expect(unknown.out).toContain('<~* 535 Authentication failed');
    await daemon.waitFor(/^[0-9a-f]{16} smtp authentication user=alice result=permfail$/);
    await daemon.waitFor(/^[0-9a-f]{16} smtp authentication user=mallory result=permfail$/);
  });

  it('refuses AUTH before STARTTLS on a tls-require listener, and MAIL before it too', async () => {
    const dialog = await Dialog.open(port.required);
    const ehlo = await dialog.send('EHLO client.example.org');
    expect(ehlo).toContain('STARTTLS');
    expect(ehlo).not.toContain('AUTH');
    const plain = Buffer.from(`\0${ALICE.user}\0${ALICE.password}`).toString('base64');
    expect(await dialog.send(`AUTH PLAIN ${plain}`)).toMatch(/^53[08] 5\.7\.\d+ /);
    expect(await dialog.send('MAIL FROM:<alice@example.org>')).toMatch(/^530 5\.7\.0 /);
    dialog.end();
    // The same listener, once TLS is up, takes the same credentials.
    const { out } = swaks(['--port', String(port.required), '--tls', ...login(ALICE, 'PLAIN'), '--quit-after', 'AUTH']);
    expect(out).toContain('<~  235 2.0.0 Authentication succeeded');
  });

  it('relays for an authenticated client: smtplib starttls() and login(), a foreign recipient accepted and queued', () => {
    const script = `
import smtplib, ssl, sys
port, cafile, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False  # the certificate is for rsa.mx.test; we connect to 127.0.0.1
with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
    client.ehlo("client.example.org")
    client.starttls(context=context)
    client.ehlo("client.example.org")
    code, text = client.login(user, password)
    print(code, text.decode())
    client.mail("alice@example.org")
    code, text = client.rcpt("carol@faraway.example")
    print(code, text.decode())
    client.rcpt("bob@example.org")
    code, text = client.data(b"Subject: relayed\\r\\n\\r\\ntoken relayed-4b1d\\r\\n")
    print(code, text.decode())
`;
    const out = execFileSync('python3', ['-c', script, String(port.rsa), certs.rsa.certFile, ALICE.user, ALICE.password], {
      encoding: 'utf8', timeout: 20_000,
    }).trim().split('\n');
    expect(out[0]).toBe('235 2.0.0 Authentication succeeded');
    expect(out[1]).toMatch(/^250 /);
    expect(out[2]).toMatch(/^250 2\.0\.0 [0-9a-f]{8} Message accepted for delivery$/);
    const queued = committedContent(spool);
    expect(queued).toContain('token relayed-4b1d');
    const envelope = queued.split('\n').find((line) => line.startsWith('{') && line.includes('faraway.example'));
    expect(envelope).toContain('"dispatcher":"relay"');
  });

  it('is not an open relay: without AUTH, the same foreign recipient gets 550', () => {
    const { out } = swaks(['--port', String(port.rsa), '--tls', '--to', 'carol@faraway.example', '--quit-after', 'RCPT']);
    expect(out).toContain('<~* 550 Invalid recipient: <carol@faraway.example>');
  });

  it('speaks TLS from the first byte on an smtps listener (swaks --tlsc)', () => {
    const { status, out } = swaks(['--port', String(port.smtps), '--tlsc', ...login(ALICE, 'LOGIN'), '--quit-after', 'AUTH']);
    expect(out).toMatch(/TLS started with cipher/);
    expect(out).toMatch(/<~  220 /);
    expect(out).toContain('<~  235 2.0.0 Authentication succeeded');
    expect(status).toBe(0);
  });

  it('picks the ECDSA pki by SNI on a listener whose own pki is RSA (openssl s_client)', () => {
    const handshake = (servername?: string) =>
      spawnSync('openssl', [
        's_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port.rsa}`, ...(servername ? ['-servername', servername] : []),
      ], { input: '', encoding: 'utf8', timeout: 20_000 }).stdout;
    const ecdsa = handshake('ecdsa.mx.test');
    expect(ecdsa).toMatch(/^subject=\s*CN\s*=\s*ecdsa\.mx\.test$/m);
    expect(ecdsa).toMatch(/Peer signature type: ECDSA/);
    const own = handshake();
    expect(own).toMatch(/^subject=\s*CN\s*=\s*rsa\.mx\.test$/m);
    expect(own).toMatch(/Peer signature type: RSA/);
  });

  it('answers 454 when the credentials table cannot answer, and lookup logs why', async () => {
    const creds = join(dir, 'creds.db');
    const before = swaks(['--port', String(port.db), '--tls', ...login(ALICE, 'PLAIN'), '--quit-after', 'AUTH']);
    expect(before.out).toContain('<~  235 2.0.0 Authentication succeeded');
    // makemap replaces a table by renaming a new file into place; this one is not a table.
    writeFileSync(`${creds}.new`, 'not a table database\n');
    renameSync(`${creds}.new`, creds);
    const after = swaks(['--port', String(port.db), '--tls', ...login(ALICE, 'PLAIN'), '--quit-after', 'AUTH']);
    expect(after.out).toContain('<~* 454 4.7.0 Temporary authentication failure');
    await daemon.waitFor(/^warn: lookup: credentials table dbcreds could not answer for user=alice: /);
    await daemon.waitFor(/^[0-9a-f]{16} smtp authentication user=alice result=tempfail$/);
  });
});

describe('a credentials table only root may read', { timeout: 30_000 }, () => {
  it.runIf(process.getuid?.() === 0)('stops the start with what to do about it: lookup, which reads it, runs as _smtpd', async () => {
    const listen = await freePort();
    const { dir: d, conf, spool: s } = workDir(listen);
    try {
      const creds = join(d, 'creds');
      writeFileSync(creds, `${ALICE.user} ${encrypt(ALICE.password)}\n`, { mode: 0o600 });
      writeFileSync(conf, [
        `pki rsa.mx.test cert "${certs.rsa.certFile}"`,
        `pki rsa.mx.test key "${certs.rsa.keyFile}"`,
        `table creds file:${creds}`,
        `listen on 127.0.0.1 port ${listen} tls pki rsa.mx.test auth <creds>`,
        'action "local" relay host smtp://127.0.0.1:9',
        'match from any for domain "example.org" action "local"',
        '',
      ].join('\n'));
      const refused = startDaemon(['-d', '-f', conf, '--spool', s]);
      expect(await refused.exited).toBe(1);
      expect(refused.lines.join('\n')).toContain(
        `${creds}: cannot read: EACCES: permission denied, open '${creds}'; it is read by the user _smtpd: ` +
          `let that user read it, as in \`chgrp _smtpd ${creds} && chmod 640 ${creds}\``,
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('auth without a table', { timeout: 30_000 }, () => {
  it('refuses to start, naming the listener and what to write instead, as smtpd -n does', async () => {
    const listen = await freePort();
    const { dir: d, conf, spool: s } = workDir(listen);
    try {
      writeFileSync(conf, [
        `pki rsa.mx.test cert "${certs.rsa.certFile}"`,
        `pki rsa.mx.test key "${certs.rsa.keyFile}"`,
        `listen on 127.0.0.1 port ${listen} tls pki rsa.mx.test auth`,
        'action "local" relay host smtp://127.0.0.1:9',
        'match from any for domain "example.org" action "local"',
        '',
      ].join('\n'));
      const error = [
        `${conf}:3:1: "auth" without a table would check the system's passwords, which this smtpd cannot read`,
        '    hint: name a credentials table, as in `auth <creds>` with `table creds file:/etc/mail/creds` holding "user hash" lines, ' +
          'each hash made by `smtpctl encrypt`',
      ];
      for (const args of [['-d', '-f', conf, '--spool', s], ['-n', '-f', conf]]) {
        const refused = startDaemon(args);
        await refused.waitFor(/^ {4}hint: name a credentials table/);
        expect(await refused.exited).toBe(1);
        expect(refused.lines, `smtpd ${args[0]}`).toEqual(error);
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
