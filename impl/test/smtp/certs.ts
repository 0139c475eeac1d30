/**
 * Self-signed certificates for the TLS tests, made with openssl at test
 * time: one RSA, one ECDSA (P-256), each valid for one name.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsContexts } from '../../src/smtp/index.ts';

export interface TestCertificate {
  name: string;
  certFile: string;
  keyFile: string;
  context: SecureContext;
}

export interface TestCertificates {
  dir: string;
  rsa: TestCertificate;
  ecdsa: TestCertificate;
  /** `rsa.mx.test` and `mx.test` (no SNI) get the RSA certificate, `ecdsa.mx.test` the ECDSA one. */
  contexts: TlsContexts;
  remove(): void;
}

function make(dir: string, name: string, key: string[]): TestCertificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`,
    ...key, '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'pipe' });
  const context = createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  return { name, certFile, keyFile, context };
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'saf-smtp-tls-'));
  const rsa = make(dir, 'rsa.mx.test', ['-newkey', 'rsa:2048']);
  const ecdsa = make(dir, 'ecdsa.mx.test', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']);
  const byName: Record<string, SecureContext> = { 'mx.test': rsa.context, 'rsa.mx.test': rsa.context, 'ecdsa.mx.test': ecdsa.context };
  return { dir, rsa, ecdsa, contexts: (name) => byName[name], remove: () => rmSync(dir, { recursive: true, force: true }) };
}
