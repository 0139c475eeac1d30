import { connect, createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SmtpServerOptions } from '../../src/smtp/index.ts';
import { makeCertificates, type TestCertificates } from './certs.ts';
import { ehloClient, RawClient, startServer } from './helpers.ts';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());

const USERS: Record<string, string> = { joe: 'secret', 'ann@example.org': 'pässword' };
const authenticate = async (user: string, password: string) => USERS[user] === password;
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function tlsServer(options: Partial<SmtpServerOptions> = {}) {
  return startServer({ tls: certs.contexts, authenticate, listener: { tls: 'starttls', auth: 'optional' }, ...options });
}

async function secureClient(port: number, servername?: string): Promise<RawClient> {
  const c = await ehloClient(port);
  expect(await c.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS');
  await c.startTls(servername ? { servername } : {});
  return c;
}

describe('STARTTLS', () => {
  it('is offered, upgrades the session, and forgets what was said before it', async () => {
    const { port, store, logs } = await tlsServer();
    const c = await RawClient.connect(port);
    await c.reply();
    const before = (await c.command('EHLO client.test')).split('\n');
    expect(before).toContain('250-STARTTLS');
    expect(before).not.toContain('250-AUTH PLAIN LOGIN');
    expect(await c.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS');
    const tls = await c.startTls();
    expect(tls.getPeerCertificate().subject.CN).toBe('rsa.mx.test');
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe('503 5.5.1 Invalid command: Command not allowed at this point.');
    const after = (await c.command('EHLO client.test')).split('\n');
    expect(after).not.toContain('250-STARTTLS');
    expect(after).toContain('250-AUTH PLAIN LOGIN');
    expect(await c.command('STARTTLS')).toBe('503 5.5.1 Invalid command: Channel already secured');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    expect(await c.command('Subject: tls\r\n\r\nhi\r\n.')).toMatch(/^250 /);
    const [m] = store.committed();
    expect(m!.text).toMatch(/by mx\.test \(Store and Forward\) with ESMTPS id [0-9a-f]{8} \(TLSv1\.3:TLS_AES_256_GCM_SHA384:256:NO\)\r\n\tfor <b@example\.org>;/);
    expect(m!.envelopes[0]!.origin.tls).toEqual({ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256 });
    expect(logs.some((l) => /smtp tls ciphers=TLSv1\.3:TLS_AES_256_GCM_SHA384:256$/.test(l))).toBe(true);
  });

  it('lets SNI pick the certificate: RSA or ECDSA', async () => {
    const { port, store } = await tlsServer();
    const e = await secureClient(port, 'ecdsa.mx.test');
    expect((e.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN).toBe('ecdsa.mx.test');
    const r = await secureClient(port, 'rsa.mx.test');
    expect((r.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN).toBe('rsa.mx.test');
    // TLS 1.2 names the key type in the suite.
    const c = await ehloClient(port);
    await c.command('STARTTLS');
    const tls12 = await c.startTls({ servername: 'ecdsa.mx.test', maxVersion: 'TLSv1.2' });
    expect(tls12.getCipher().name).toMatch(/^ECDHE-ECDSA-/);
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    await c.command('x\r\n.');
    expect(store.committed()[0]!.text).toMatch(/\(TLSv1\.2:ECDHE-ECDSA-AES(128|256)-GCM-SHA(256|384):(128|256):NO\)/);
  });

  it('refuses clear text sent after STARTTLS in the same packet (CVE-2011-0411)', async () => {
    const { port } = await tlsServer();
    const c = await ehloClient(port);
    c.send('STARTTLS\r\nEHLO injected.test\r\n');
    expect(await c.reply()).toBe('500 5.5.1 Invalid command: Pipelining not allowed after STARTTLS');
    expect(await c.closed()).toBe(true);
  });

  it('refuses clear text that arrives while a starttls hook decides (CVE-2011-0411)', async () => {
    const hooks = { starttls: [() => new Promise<{ decision: 'proceed' }>((r) => setTimeout(() => r({ decision: 'proceed' }), 200))] };
    const { port, logs } = await tlsServer({ hooks });
    const c = await ehloClient(port);
    c.send('STARTTLS\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.send('EHLO injected.test\r\n');
    expect(await c.reply()).toBe('500 5.5.1 Invalid command: Pipelining not allowed after STARTTLS');
    expect(await c.closed()).toBe(true);
    expect(logs.join('\n')).not.toContain('tls ciphers=');
  });

  it('is refused where it is not offered', async () => {
    const { port } = await startServer({ tls: certs.contexts });
    const c = await ehloClient(port);
    expect(await c.command('STARTTLS')).toBe('503 5.5.1 Invalid command: Command not supported');
  });

  it('is required before MAIL on a tls-require listener', async () => {
    const { port } = await tlsServer({ listener: { tls: 'tls-require' } });
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe('530 5.7.0 Must issue a STARTTLS command first');
    expect(await c.command('STARTTLS')).toMatch(/^220 /);
    await c.startTls();
    await c.command('EHLO client.test');
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe('250 2.0.0 Ok');
  });
});

describe('smtps', () => {
  it('starts TLS at connect and greets over it', async () => {
    const { port, store } = await startServer({ tls: certs.contexts, listener: { tls: 'smtps' } });
    const c = await RawClient.connectTls(port, { servername: 'ecdsa.mx.test' });
    expect(await c.reply()).toBe('220 mx.test ESMTP Store and Forward');
    expect((await c.command('EHLO client.test')).split('\n')).not.toContain('250-STARTTLS');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    await c.command('x\r\n.');
    expect(store.committed()[0]!.text).toContain('with ESMTPS id');
  });

  it('picks the pki by SNI when the ClientHello comes in two records', async () => {
    const { port } = await startServer({ tls: certs.contexts, listener: { tls: 'smtps' } });
    // Between client and server: the first record, the ClientHello, is cut in two records; the rest passes as it is.
    const proxy = createServer((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      outbound.on('error', () => inbound.destroy()).pipe(inbound);
      inbound.on('error', () => outbound.destroy()).on('close', () => outbound.destroy());
      let pending: Buffer | undefined = Buffer.alloc(0);
      inbound.on('data', (d: Buffer) => {
        if (pending === undefined) return void outbound.write(d);
        pending = Buffer.concat([pending, d]);
        if (pending.length < 5 || pending.length < 5 + pending.readUInt16BE(3)) return;
        const end = 5 + pending.readUInt16BE(3);
        const record = (part: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, part.length >> 8, part.length & 0xff]), part]);
        outbound.write(Buffer.concat([record(pending.subarray(5, 20)), record(pending.subarray(20, end)), pending.subarray(end)]));
        pending = undefined;
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const tls = tlsConnect({ port: (proxy.address() as AddressInfo).port, host: '127.0.0.1', servername: 'ecdsa.mx.test', rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
      expect(tls.getPeerCertificate().subject.CN).toBe('ecdsa.mx.test');
      tls.destroy();
    } finally {
      proxy.close();
    }
  });

  it('waits for the name lookup without taking the ClientHello for early talk', async () => {
    const resolveName = () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 300));
    const { port, logs } = await startServer({ tls: certs.contexts, listener: { tls: 'smtps' }, resolveName });
    const c = await RawClient.connectTls(port, { servername: 'ecdsa.mx.test' });
    expect(await c.reply()).toBe('220 mx.test ESMTP Store and Forward');
    expect(logs.join('\n')).not.toContain('Talked before the greeting');
  });
});

describe('AUTH', () => {
  it('needs TLS first (538), unless the listener allows it in clear', async () => {
    const { port } = await tlsServer();
    const c = await ehloClient(port);
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('538 5.7.11 Encryption required for requested authentication mechanism');
    const clear = await startServer({ authenticate, listener: { auth: 'optional', authPlaintext: true } });
    const d = await ehloClient(clear.port);
    expect(await d.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
    const none = await startServer({ authenticate });
    const e = await ehloClient(none.port);
    expect(await e.command('AUTH PLAIN')).toBe('503 5.5.1 Invalid command: Command not supported');
  });

  it('PLAIN with an initial response, and the envelope says who', async () => {
    const { port, store, logs } = await tlsServer({ listener: { tls: 'starttls', auth: 'optional', receivedAuth: true } });
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0wrong')}`)).toBe('535 Authentication failed');
    // RFC 4616 2: joe may not act as admin, whatever his password; he may name himself.
    expect(await c.command(`AUTH PLAIN ${b64('admin\0joe\0secret')}`)).toBe('535 Authentication failed');
    expect(await c.command(`AUTH PLAIN ${b64('joe\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Invalid command: Already authenticated');
    expect((await c.command('EHLO client.test')).split('\n')).not.toContain('250-AUTH PLAIN LOGIN');
    await c.command('MAIL FROM:<joe@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    await c.command('x\r\n.');
    const [m] = store.committed();
    expect(m!.text).toMatch(/with ESMTPSA id [0-9a-f]{8} \(TLSv1\.3:[A-Z0-9_]+:\d+:NO\) auth=yes user=joe\r\n/);
    expect(m!.envelopes[0]!.origin.authUser).toBe('joe');
    expect(logs.filter((l) => l.includes('authentication')).map((l) => l.slice(17))).toEqual([
      'smtp authentication user=joe result=permfail',
      'smtp authentication user=joe result=permfail',
      'smtp authentication user=joe result=ok',
    ]);
    expect(logs.some((l) => l.includes('failed-command command="AUTH PLAIN ********" result="535 Authentication failed"'))).toBe(true);
  });

  it('refuses a word after the initial response (RFC 4954 4)', async () => {
    const { port, logs } = await tlsServer();
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0secret')} extra`)).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command(`AUTH LOGIN ${b64('joe')} ${b64('secret')}`)).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(logs.some((l) => l.includes('result=ok'))).toBe(false);
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
  });

  it('PLAIN in two steps, and LOGIN, with UTF-8 credentials', async () => {
    const { port } = await tlsServer();
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command('AUTH PLAIN')).toBe('334 ');
    expect(await c.command(b64('\0ann@example.org\0pässword'))).toBe('235 2.0.0 Authentication succeeded');
    const d = await secureClient(port);
    await d.command('EHLO client.test');
    expect(await d.command('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await d.command(b64('joe'))).toBe('334 UGFzc3dvcmQ6');
    expect(await d.command(b64('secret'))).toBe('235 2.0.0 Authentication succeeded');
    const e = await secureClient(port);
    await e.command('EHLO client.test');
    expect(await e.command(`AUTH LOGIN ${b64('joe')}`)).toBe('334 UGFzc3dvcmQ6');
    expect(await e.command(b64('nope'))).toBe('535 Authentication failed');
  });

  it('takes a tab after the mechanism, as 6.8 does, and never logs the response that follows', async () => {
    const { port, logs } = await tlsServer();
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN\t${b64('\0joe\0wrong')}`)).toBe('535 Authentication failed');
    expect(await c.command(`AUTH PLAIN\t${b64('\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
    expect(logs.join('\n')).not.toContain(b64('\0joe\0wrong'));
    expect(logs.some((l) => l.includes('failed-command command="AUTH PLAIN ********" result="535 Authentication failed"'))).toBe(true);
  });

  it('answers malformed exchanges', async () => {
    const { port } = await tlsServer();
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command('AUTH')).toBe('501 5.5.4 Invalid command arguments: No parameters given');
    expect(await c.command('AUTH CRAM-MD5')).toBe('504 5.7.4 Security features not supported: AUTH method "CRAM-MD5" not supported');
    expect(await c.command('AUTH PLAIN !!!!')).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command(`AUTH PLAIN ${b64('joe secret')}`)).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await c.command('*')).toBe('501 5.7.0 Authentication cancelled');
    await c.command('MAIL FROM:<a@example.com>');
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Invalid command: Command not allowed at this point.');
  });

  it('is required before MAIL on an auth listener, and a failing check is a temporary error', async () => {
    const { port } = await tlsServer({ listener: { tls: 'starttls', auth: 'required' } });
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe('530 5.7.0 Must issue an AUTH command first');
    const broken = await tlsServer({ authenticate: async () => { throw new Error('no password database'); } });
    const d = await secureClient(broken.port);
    await d.command('EHLO client.test');
    expect(await d.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('454 4.7.0 Temporary authentication failure');
  });

  it('asks the auth hooks once the password is right', async () => {
    const { port } = await tlsServer({
      hooks: { auth: [(ctx) => ctx.param === 'joe' ? { decision: 'reject', reply: { code: 535, enhanced: '5.7.8', lines: ['Account locked'] } } : { decision: 'proceed' }] },
    });
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('535 5.7.8 Account locked');
  });
});

describe('a TLS error', () => {
  it('is logged on one line, however OpenSSL words it', async () => {
    const { port, logs } = await startServer({ tls: certs.contexts, listener: { tls: 'smtps' } });
    const c = await RawClient.connect(port);
    // A TLS record header that claims a handshake, then bytes that are none.
    c.send(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(0x40, 0x41)]));
    await c.closed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const line = logs.find((l) => l.includes('disconnected reason="io-error'));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/[\n\r]/);
    expect(line).toMatch(/"$/);
  });
});

describe('a user name longer than any address', () => {
  it('is a syntax error, not a question for the password table', async () => {
    let asked = 0;
    const { port } = await tlsServer({ authenticate: async () => ((asked += 1), false) });
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${b64(`\0${'u'.repeat(256)}\0secret`)}`)).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command(`AUTH PLAIN ${b64(`\0${'u'.repeat(255)}\0secret`)}`)).toBe('535 Authentication failed');
    expect(asked).toBe(1);
  });

  it('is refused by LOGIN before the password is asked for', async () => {
    const { port } = await tlsServer();
    const c = await secureClient(port);
    await c.command('EHLO client.test');
    expect(await c.command('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await c.command(b64('u'.repeat(8000)))).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command(`AUTH LOGIN ${b64('u'.repeat(256))}`)).toBe('501 5.5.2 Syntax error: Syntax error');
    expect(await c.command(`AUTH LOGIN ${b64('joe')}`)).toBe('334 UGFzc3dvcmQ6');
  });
});

describe('a client that leaves during its TLS hello', () => {
  it('is logged as a disconnect, with no error from the reading of the hello', async () => {
    const { port, logs } = await tlsServer();
    const c = await ehloClient(port);
    expect(await c.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS');
    c.socket.end(Buffer.from([0x16, 0x03, 0x01])); // the start of a record header, then FIN
    await c.closed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logs.filter((l) => l.includes('disconnected'))).toEqual([expect.stringMatching(/ smtp disconnected reason=disconnect$/)]);
    expect(logs.filter((l) => l.startsWith('warn:'))).toEqual([]);
  });
});

describe('the trace of the dialogue (smtpd -T smtp)', () => {
  it('shows each line both ways, and never a password, however AUTH sends it', async () => {
    const trace: string[] = [];
    const { port } = await startServer({
      authenticate, listener: { auth: 'optional', authPlaintext: true },
      logger: { info: () => {}, warn: () => {}, trace: (line) => trace.push(line) },
    });
    const c = await ehloClient(port);
    expect(await c.command(`AUTH PLAIN ${b64('\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
    const d = await ehloClient(port);
    expect(await d.command('AUTH LOGIN')).toMatch(/^334 /);
    expect(await d.command(b64('joe'))).toMatch(/^334 /);
    expect(await d.command(b64('secret'))).toBe('235 2.0.0 Authentication succeeded');
    const e = await ehloClient(port);
    expect(await e.command(`AUTH PLAIN\t${b64('\0joe\0secret')}`)).toBe('235 2.0.0 Authentication succeeded');
    expect(await e.command('MAIL FROM:<a@b\x01>')).toMatch(/^5/);
    const text = trace.join('\n');
    expect(text).not.toContain(b64('\0joe\0secret'));
    expect(text).not.toContain(b64('secret'));
    expect(text).not.toContain(b64('joe'));
    const id = /^smtp: ([0-9a-f]{16}): /.exec(trace[0]!)?.[1];
    expect(trace.slice(0, 3)).toEqual([
      `smtp: ${id}: >>> 220 mx.test ESMTP Store and Forward`,
      `smtp: ${id}: <<< EHLO client.test`,
      `smtp: ${id}: >>> 250-mx.test Hello client.test [127.0.0.1], pleased to meet you`,
    ]);
    expect(trace).toContain(`smtp: ${id}: <<< AUTH PLAIN ********`);
    expect(trace).toContain(`smtp: ${id}: >>> 235 2.0.0 Authentication succeeded`);
    expect(trace.filter((l) => l.endsWith(': <<< ********'))).toHaveLength(2);
    expect(text).toContain('<<< MAIL FROM:<a@b\\x01>');
  });
});
