import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type AddressInfo, type Server, createServer as createNetServer } from 'node:net';
import { type PeerCertificate, TLSSocket, type ConnectionOptions, connect, createServer } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/ast.ts';
import { acceptTls, serverNameOf } from '../../src/crypto/client-hello.ts';
import { loadPkis } from '../../src/crypto/pki.ts';
import { selectPki, sniCallback, tlsContextsFor, type TlsContextSelector } from '../../src/crypto/tls-contexts.ts';
import { config, makeCertificate, scratchDir } from './helpers.ts';

describe('selectPki', () => {
  const own = { id: 'own', names: ['mx.example.org', 'smtp.example.org'] };
  const net = { id: 'net', names: ['mail.example.net'] };
  const wild = { id: 'wild', names: ['wild', '*.example.org'] };
  const candidates = [own, net, wild];
  const chosen = (name?: string) => selectPki(candidates, name)?.id;

  it('chooses by exact name, ignoring case and a final dot', () => {
    expect([chosen('mail.example.net'), chosen('MAIL.Example.NET.'), chosen('smtp.example.org')]).toEqual(['net', 'net', 'own']);
  });

  it('prefers an exact name to a wildcard, and takes a wildcard for one label only', () => {
    expect([chosen('mx.example.org'), chosen('imap.example.org')]).toEqual(['own', 'wild']);
    expect([chosen('example.org'), chosen('a.b.example.org')]).toEqual([undefined, undefined]);
  });

  it('keeps the listener’s own pki without a name or a match', () => {
    expect([chosen(undefined), chosen(''), chosen('other.example')]).toEqual([undefined, undefined, undefined]);
  });
});

const dir = scratchDir();
const rsa = makeCertificate(dir, 'rsa', 'rsa', 'mx.example.org', ['mx.example.org', 'smtp.example.org']);
const ec = makeCertificate(dir, 'ec', 'ec', 'mail.example.net');
const wild = makeCertificate(dir, 'wild', 'rsa', '*.example.com');

function pkis(extra = ''): Config {
  return config(
    `pki mx.example.org cert "${rsa.cert}" key "${rsa.key}"\n` +
      `pki mail.example.net cert "${ec.cert}" key "${ec.key}"\n` +
      `pki wild cert "${wild.cert}" key "${wild.key}"\n` +
      extra,
  );
}

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

const servers: Server[] = [];
afterAll(() => servers.forEach((server) => server.close()));

/** A TLS server on 127.0.0.1 that starts TLS on each connection as the SMTP engine does. */
async function serve(select: TlsContextSelector): Promise<number> {
  const server = createNetServer((socket) => {
    acceptTls(socket, select).then(
      (tls: TLSSocket) => {
        tls.on('error', () => socket.destroy());
        tls.on('secure', () => tls.end());
      },
      () => socket.destroy(),
    );
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return (server.address() as AddressInfo).port;
}

interface Handshake {
  cert: PeerCertificate;
  protocol: string | null;
  cipher: string;
}

function handshake(port: number, options: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      resolve({ cert: socket.getPeerCertificate(), protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('tlsContextsFor', () => {
  const conf = pkis('listen on 127.0.0.1 port 2525 tls pki mx.example.org\n');
  const select = tlsContextsFor(conf, conf.listeners[0]!)!;
  const port = serve(select);

  it.each([
    [undefined, rsa.cert],
    ['mail.example.net', ec.cert],
    ['smtp.example.org', rsa.cert],
    ['relay.example.com', wild.cert],
    ['unknown.example', rsa.cert],
  ])('serves to a client asking for %s the certificate %s', async (servername, cert) => {
    const { cert: served } = await handshake(await port, servername === undefined ? {} : { servername });
    expect(served.fingerprint256).toBe(fingerprint(cert));
  });

  it.each(['TLSv1.2', 'TLSv1.3'] as const)('serves ECDSA and RSA pkis side by side in %s', async (version) => {
    const ecFirst = pkis('listen on 127.0.0.1 tls pki mail.example.net\n');
    const ecPort = await serve(tlsContextsFor(ecFirst, ecFirst.listeners[0]!)!);
    for (const [p, servername, cert] of [
      [await port, 'mail.example.net', ec.cert],
      [ecPort, 'mx.example.org', rsa.cert],
      [ecPort, 'unknown.example', ec.cert],
    ] as const) {
      const served = await handshake(p, { servername, maxVersion: version });
      expect([served.protocol, served.cert.fingerprint256]).toEqual([version, fingerprint(cert)]);
    }
  });

  it('completes an ECDSA handshake, in TLS 1.3 and in TLS 1.2', async () => {
    const tls13 = await handshake(await port, { servername: 'mail.example.net' });
    expect([tls13.protocol, tls13.cert.asn1Curve]).toEqual(['TLSv1.3', 'prime256v1']);
    const tls12 = await handshake(await port, { servername: 'mail.example.net', maxVersion: 'TLSv1.2' });
    expect(tls12.protocol).toBe('TLSv1.2');
    expect(tls12.cipher).toMatch(/^ECDHE-ECDSA-/);
  });

  it('refuses TLS before 1.2', async () => {
    await expect(
      handshake(await port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }),
    ).rejects.toThrow(/protocol version|unsupported protocol/i);
  });

  it('works as the SNICallback of tls.createServer, between pkis of one key type', async () => {
    const { key, cert } = { key: readFileSync(rsa.key), cert: readFileSync(rsa.cert) };
    const server = createServer({ key, cert, SNICallback: sniCallback(select) }, (socket) => socket.end());
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    try {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const served = await handshake((server.address() as AddressInfo).port, { servername: 'a.example.com', maxVersion: version });
        expect(served.cert.fingerprint256).toBe(fingerprint(wild.cert));
      }
    } finally {
      server.close();
    }
  });

  it('uses the smtp ciphers of the configuration', async () => {
    const strict = pkis('smtp ciphers "ECDHE-RSA-AES128-GCM-SHA256"\nlisten on 127.0.0.1 tls pki mx.example.org\n');
    const strictPort = await serve(tlsContextsFor(strict, strict.listeners[0]!)!);
    const { cipher } = await handshake(strictPort, { maxVersion: 'TLSv1.2' });
    expect(cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  it('gives a listener without pki the one named by its hostname, and none without tls', () => {
    const c = pkis('listen on 127.0.0.1 tls hostname mail.example.net\nlisten on 127.0.0.1 port 26\n');
    const shared = { pkis: loadPkis(c) };
    expect(tlsContextsFor(c, c.listeners[0]!, shared)).toBeTypeOf('function');
    expect(tlsContextsFor(c, c.listeners[1]!, shared)).toBeUndefined();
    expect(() => tlsContextsFor(c, { ...c.listeners[0]!, hostname: 'nope.example' }, shared)).toThrow(
      'the listener offers TLS, but there is no pki nope.example: name one with `pki NAME`',
    );
  });
});

describe('serverNameOf', () => {
  /** The first record a Node client sends, caught by a server that never answers. */
  async function clientHello(options: ConnectionOptions): Promise<Buffer> {
    const server = createNetServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const first = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
    const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...options });
    client.on('error', () => {});
    const record = await first;
    server.close();
    return record;
  }

  it('reads the host name a client asks for, or none', async () => {
    expect(serverNameOf(await clientHello({ servername: 'Mail.Example.NET' }))).toBe('Mail.Example.NET');
    expect(serverNameOf(await clientHello({ maxVersion: 'TLSv1.2', servername: 'mx.example.org' }))).toBe('mx.example.org');
    expect(serverNameOf(await clientHello({}))).toBeUndefined();
  });

  it('reads a ClientHello split over several records', async () => {
    const record = await clientHello({ servername: 'mx.example.org' });
    const body = record.subarray(5, 5 + record.readUInt16BE(3));
    const asRecord = (part: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, part.length >> 8, part.length & 0xff]), part]);
    for (const cut of [1, 4, 40, body.length - 20]) {
      const split = Buffer.concat([asRecord(body.subarray(0, cut)), asRecord(body.subarray(cut))]);
      expect(serverNameOf(split)).toBe('mx.example.org');
    }
  });

  it('gives up on what is not a ClientHello, or is cut short', async () => {
    const record = await clientHello({ servername: 'mx.example.org' });
    expect(serverNameOf(Buffer.from('EHLO client.example.org\r\n'))).toBeUndefined();
    for (const length of [0, 5, 6, 43, 60, record.length - 3]) {
      expect(serverNameOf(record.subarray(0, length))).toBeUndefined();
    }
  });
});
