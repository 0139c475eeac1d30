/**
 * Real SMTP clients against the engine: swaks (Perl) and Python's smtplib.
 * They run as child processes, asynchronously, since the engine runs in
 * this process and must keep answering.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificates, type TestCertificates } from './certs.ts';
import { startServer } from './helpers.ts';

interface Run {
  code: number;
  out: string;
}

function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

const SWAKS = ['/usr/bin/swaks', '/usr/local/bin/swaks'].find(existsSync);
const CI = process.env.CI !== undefined;
if (!SWAKS && CI) throw new Error('swaks is required when CI is set (apt-get install swaks)');

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());

const authenticate = async (user: string, password: string) => user === 'joe' && password === 'secret';

describe.skipIf(!SWAKS)('swaks', () => {
  const swaks = (port: number, ...args: string[]) =>
    run(SWAKS!, ['--server', `127.0.0.1:${port}`, '--helo', 'client.test', '--from', 'alice@example.com', '--to', 'bob@example.org', ...args]);

  it('sends a message in a plain session', async () => {
    const { port, store } = await startServer();
    const r = await swaks(port, '--body', 'Hello from swaks.\n.leading dot\n');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/<- {2}250 2\.0\.0 [0-9a-f]{8} Message accepted for delivery/);
    const [m] = store.committed();
    expect(m!.text).toContain('Hello from swaks.\r\n.leading dot\r\n');
    expect(m!.text).toMatch(/^Received: from client\.test \(<unknown> \[127\.0\.0\.1\]\)/);
  });

  it('pipelines MAIL, RCPT and DATA to several recipients', async () => {
    const { port, store } = await startServer();
    const r = await swaks(port, '--pipeline', '--to', 'bob@example.org,carol@example.org,dave@example.org');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/ -> MAIL FROM:<alice@example\.com>\n -> RCPT TO:<bob@example\.org>\n -> RCPT TO:<carol@example\.org>/);
    expect(store.committed()[0]!.envelopes.map((e) => e.recipient.user)).toEqual(['bob', 'carol', 'dave']);
  });

  for (const name of ['rsa.mx.test', 'ecdsa.mx.test']) {
    it(`starts TLS and authenticates, with the ${name.split('.')[0]!.toUpperCase()} certificate`, async () => {
      const { port, store } = await startServer({ tls: certs.contexts, authenticate, listener: { tls: 'starttls', auth: 'optional' } });
      for (const mechanism of ['PLAIN', 'LOGIN']) {
        const r = await swaks(port, '-tls', '--tls-sni', name, '--tls-get-peer-cert', '-a', mechanism, '-au', 'joe', '-ap', 'secret');
        expect(r.code, r.out).toBe(0);
        expect(r.out).toContain('<-  220 2.0.0 Ready to start TLS');
        expect(r.out).toContain(`=== TLS peer DN="/CN=${name}"`);
        expect(r.out).toContain('<~  235 2.0.0 Authentication succeeded');
      }
      expect(store.committed().map((m) => / with (\w+) /.exec(m.text)![1])).toEqual(['ESMTPSA', 'ESMTPSA']);
    });
  }

  it('is refused a wrong password', async () => {
    const { port } = await startServer({ tls: certs.contexts, authenticate, listener: { tls: 'starttls', auth: 'optional' } });
    const r = await swaks(port, '-tls', '-a', 'PLAIN', '-au', 'joe', '-ap', 'guess');
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('<~* 535 Authentication failed');
  });

  it('talks to an smtps listener', async () => {
    const { port, store } = await startServer({ tls: certs.contexts, listener: { tls: 'smtps' } });
    const r = await swaks(port, '--tls-on-connect');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('<~  220 mx.test ESMTP Store and Forward');
    expect(store.committed()).toHaveLength(1);
  });
});

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3', join(process.env.HOME ?? '', '.pyenv/shims/python3')].find(existsSync);
if (!PYTHON && CI) throw new Error('python3 is required when CI is set');

describe.skipIf(!PYTHON)("Python's smtplib", () => {
  const python = (script: string) => run(PYTHON!, ['-c', script]);

  it('sends to several recipients, with DSN options and SIZE', async () => {
    const { port, store } = await startServer();
    const r = await python(`
import smtplib
with smtplib.SMTP("127.0.0.1", ${port}, local_hostname="py.test") as s:
    refused = s.sendmail("alice@example.com", ["bob@example.org", "carol@example.org"],
        "Subject: from Python\\r\\n\\r\\nline one\\r\\n.dot line\\r\\n",
        rcpt_options=["NOTIFY=FAILURE"])
    print("refused", refused)
`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('refused {}');
    const [m] = store.committed();
    expect(m!.envelopes.map((e) => e.dsn)).toEqual([{ notify: ['FAILURE'] }, { notify: ['FAILURE'] }]);
    expect(m!.text).toMatch(/Subject: from Python\r\n\r\nline one\r\n\.dot line\r\n$/);
  });

  it('starts TLS, logs in, and sends a UTF-8 address with SMTPUTF8', async () => {
    const { port, store } = await startServer({ tls: certs.contexts, authenticate, listener: { tls: 'starttls', auth: 'optional' } });
    const r = await python(`
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", ${port}, local_hostname="py.test") as s:
    s.starttls(context=ctx)
    s.login("joe", "secret")
    s.sendmail("jöran@example.com", ["åsa@example.org"], "Subject: hej\\r\\n\\r\\nhej då\\r\\n".encode(), mail_options=["SMTPUTF8"])
    print("cipher", s.sock.cipher()[0])
`);
    expect(r.code, r.out).toBe(0);
    const [m] = store.committed();
    expect(m!.envelopes[0]!.recipient).toEqual({ user: 'åsa', domain: 'example.org' });
    expect(m!.envelopes[0]!.origin.authUser).toBe('joe');
    expect(m!.text).toContain(' with UTF8SMTPSA id ');
  });

  it('is told 552 for a message over the size limit it declared', async () => {
    const { port } = await startServer({ limits: { maxMessageSize: 100 } });
    const r = await python(`
import smtplib
with smtplib.SMTP("127.0.0.1", ${port}) as s:
    try:
        s.sendmail("a@example.com", ["b@example.org"], "x" * 200)
    except smtplib.SMTPSenderRefused as e:
        print("refused", e.smtp_code, e.smtp_error.decode())
`);
    expect(r.out.trim()).toBe('refused 552 5.3.4 Message too big for system: Message size exceeds fixed maximum message size');
  });
});
