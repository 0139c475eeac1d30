import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PkiError, loadPki, loadPkis } from '../../src/crypto/pki.ts';
import { config, makeCertificate, scratchDir, writeIn } from './helpers.ts';

const dir = scratchDir();
const rsa = makeCertificate(dir, 'rsa', 'rsa', 'mx.example.org', ['mx.example.org', 'smtp.example.org']);
const ec = makeCertificate(dir, 'ec', 'ec', 'mail.example.net');
const bare = makeCertificate(dir, 'bare', 'ec', 'old.example.com', []);

function pkiConfig(name: string, cert: string, key: string): string {
  return `pki ${name} cert "${cert}"\npki ${name} key "${key}"\n`;
}

describe('loadPki', () => {
  it('loads an RSA pki, and the names its certificate is for', () => {
    const pki = loadPki(config(pkiConfig('mx.example.org', rsa.cert, rsa.key)), 'mx.example.org');
    expect(pki.keyType).toBe('rsa');
    expect(pki.names).toEqual(['mx.example.org', 'smtp.example.org']);
    expect(pki.certificates).toHaveLength(1);
    expect(pki.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(pki.chain).toBe(readFileSync(rsa.cert, 'utf8'));
  });

  it('loads an ECDSA pki, whose key file starts with EC PARAMETERS', () => {
    const pki = loadPki(config(pkiConfig('mail', ec.cert, ec.key)), 'mail');
    expect(pki.keyType).toBe('ec');
    expect(pki.names).toEqual(['mail', 'mail.example.net']);
  });

  it("falls back on the common name of a certificate without subjectAltName", () => {
    expect(loadPki(config(pkiConfig('old', bare.cert, bare.key)), 'old').names).toEqual(['old', 'old.example.com']);
  });

  it('refuses a key that is not the certificate’s, naming the pki and both files', () => {
    const conf = config(pkiConfig('mx.example.org', rsa.cert, ec.key));
    expect(() => loadPki(conf, 'mx.example.org')).toThrow(PkiError);
    expect(() => loadPki(conf, 'mx.example.org')).toThrow(
      `smtpd.conf:2: pki mx.example.org: the key "${ec.key}" does not match the certificate "${rsa.cert}"`,
    );
  });

  it('loads a chain and refuses one out of order', () => {
    const ca = join(dir, 'ca');
    const leaf = join(dir, 'leaf');
    const sh = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', '/CN=Test CA']);
    sh(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', '/CN=relay.example.org']);
    sh(['x509', '-req', '-in', `${leaf}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${leaf}.crt`, '-days', '2']);
    const [leafPem, caPem] = [readFileSync(`${leaf}.crt`, 'utf8'), readFileSync(`${ca}.crt`, 'utf8')];
    const good = writeIn(dir, 'fullchain.pem', leafPem + caPem);
    const bad = writeIn(dir, 'backwards.pem', caPem + leafPem);

    expect(loadPki(config(pkiConfig('relay.example.org', good, `${leaf}.key`)), 'relay.example.org').certificates).toHaveLength(2);
    expect(() => loadPki(config(pkiConfig('relay.example.org', bad, `${leaf}.key`)), 'relay.example.org')).toThrow(
      `smtpd.conf:1: pki relay.example.org: certificate 2 in "${bad}" did not issue certificate 1`,
    );
  });

  it('says which file cannot be read, or holds the wrong thing', () => {
    const missing = join(dir, 'missing.crt');
    expect(() => loadPki(config(pkiConfig('x', missing, rsa.key)), 'x')).toThrow(
      `pki x: cannot read the certificate "${missing}": no such file`,
    );
    expect(() => loadPki(config(pkiConfig('x', rsa.key, rsa.key)), 'x')).toThrow(`"${rsa.key}" holds no PEM certificate`);
    expect(() => loadPki(config(pkiConfig('x', rsa.cert, rsa.cert)), 'x')).toThrow(`"${rsa.cert}" holds no PEM private key`);
  });

  it('refuses a key protected by a passphrase', () => {
    const encrypted = join(dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', rsa.key, '-aes256', '-passout', 'pass:x', '-out', encrypted], { stdio: 'pipe' });
    expect(() => loadPki(config(pkiConfig('mx.example.org', rsa.cert, encrypted)), 'mx.example.org')).toThrow(/is encrypted/);
  });

  it('loads every pki of a configuration, one statement or several', () => {
    const conf = config(`pki a cert "${rsa.cert}"\npki b cert "${ec.cert}" key "${ec.key}"\npki a key "${rsa.key}"\n`);
    expect([...loadPkis(conf).keys()]).toEqual(['a', 'b']);
  });
});
