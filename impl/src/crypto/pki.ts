/**
 * A pki: the certificate chain and private key a listener presents in TLS,
 * declared by name in smtpd.conf(5):
 *
 *     pki mx.example.org cert "/etc/ssl/mx.example.org.fullchain.pem"
 *     pki mx.example.org key  "/etc/ssl/private/mx.example.org.key"
 *
 * The name is, by convention, the host name the certificate is for; it is
 * what a client's SNI is matched against (tls-contexts.ts). Loading reads
 * both files, checks that they belong together, and refuses what
 * OpenSSL would otherwise accept only to fail every handshake.
 *
 * In OpenSMTPD the keys live in a separate crypto process that signs
 * handshakes on request, so that a hole in the SMTP process cannot read
 * them. Node's TLS has no hook for remote signing: here the key is in the
 * SecureContext of the process that speaks TLS.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config, PkiDecl, SourceLocation } from '../config/ast.ts';

/** A pki read from its files and checked. */
export interface LoadedPki {
  name: string;
  certFile: string;
  keyFile: string;
  /** The certificate chain as PEM: the server's certificate first, then the certificates that issued it. */
  chain: string;
  certificates: X509Certificate[];
  /** The private key as PKCS#8 PEM, whatever form the file had. */
  key: string;
  keyType: 'rsa' | 'ec';
  /** The names the pki answers to: its own name, then its certificate's DNS names. */
  names: string[];
  dhe?: PkiDecl['dhe'];
}

/** A pki that cannot be used; the message names the pki and the file at fault. */
export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    message: string,
    readonly pki: string,
    readonly loc?: SourceLocation,
  ) {
    super(`${loc ? `${loc.file}:${loc.line}: ` : ''}pki ${pki}: ${message}`);
  }
}

/** Every pki the configuration declares, loaded, by name. Throws PkiError for the first that fails. */
export function loadPkis(config: Config): Map<string, LoadedPki> {
  const pkis = new Map<string, LoadedPki>();
  for (const { name } of config.pkis) if (!pkis.has(name)) pkis.set(name, loadPki(config, name));
  return pkis;
}

/**
 * Loads the pki `name`. Its statements may be spread over several lines
 * (`pki x cert ...`, then `pki x key ...`); a later file replaces an
 * earlier one.
 */
export function loadPki(config: Config, name: string): LoadedPki {
  const decls = config.pkis.filter((p) => p.name === name);
  const last = <K extends keyof PkiDecl>(field: K): PkiDecl | undefined => decls.findLast((p) => p[field] !== undefined);
  const certDecl = last('cert');
  const keyDecl = last('key');
  if (decls.length === 0) throw new PkiError('no such pki in the configuration', name);
  if (certDecl?.cert === undefined) throw new PkiError(`no certificate: add pki ${name} cert "FILE"`, name, decls[0]?.loc);
  if (keyDecl?.key === undefined) throw new PkiError(`no key: add pki ${name} key "FILE"`, name, decls[0]?.loc);
  const certLoc = certDecl.certLoc ?? certDecl.loc;
  const keyLoc = keyDecl.keyLoc ?? keyDecl.loc;

  const certificates = readChain(name, certDecl.cert, certLoc);
  const { key, keyType } = readKey(name, keyDecl.key, keyLoc);
  checkKeyMatches(name, certificates[0]!, key, certDecl.cert, keyDecl.key, keyLoc);

  const dhe = last('dhe')?.dhe;
  return {
    name,
    certFile: certDecl.cert,
    keyFile: keyDecl.key,
    chain: certificates.map((c) => c.toString()).join(''),
    certificates,
    key: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    keyType,
    names: [name.toLowerCase(), ...certificateNames(certificates[0]!).filter((n) => n !== name.toLowerCase())],
    ...(dhe !== undefined && { dhe }),
  };
}

// #region check-key-matches
/**
 * A certificate says "this public key is mx.example.org"; the server
 * proves it is mx.example.org by signing with the private half. If the
 * key file holds another key (an old one, after the certificate was
 * renewed with a new key), nothing fails until the first client tries a
 * handshake and sees a signature its certificate cannot verify. So we
 * compare the key with the certificate's public key now, and name both
 * files when they differ.
 */
function checkKeyMatches(
  name: string,
  leaf: X509Certificate,
  key: KeyObject,
  certFile: string,
  keyFile: string,
  loc: SourceLocation,
): void {
  if (leaf.checkPrivateKey(key)) return;
  throw new PkiError(
    `the key "${keyFile}" does not match the certificate "${certFile}" ` +
      `(the certificate holds another public key; was one of them renewed without the other?)`,
    name,
    loc,
  );
}
// #endregion check-key-matches

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The certificates of a chain file, in order, each checked to be issued by the next. */
function readChain(name: string, file: string, loc: SourceLocation): X509Certificate[] {
  const text = readText(name, file, 'certificate', loc);
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new PkiError(`"${file}" holds no PEM certificate`, name, loc);
  const certificates = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new PkiError(`certificate ${i + 1} in "${file}" cannot be read: ${(err as Error).message}`, name, loc);
    }
  });
  // A client follows the chain from the server's certificate up; a chain
  // out of order fails its verification, so refuse it here.
  for (let i = 0; i + 1 < certificates.length; i++) {
    if (!certificates[i]!.checkIssued(certificates[i + 1]!)) {
      throw new PkiError(
        `certificate ${i + 2} in "${file}" did not issue certificate ${i + 1}: ` +
          'list the server certificate first, then each issuer in turn',
        name,
        loc,
      );
    }
  }
  return certificates;
}

/** The private key, which must be RSA or ECDSA and not protected by a passphrase. */
function readKey(name: string, file: string, loc: SourceLocation): { key: KeyObject; keyType: 'rsa' | 'ec' } {
  const text = readText(name, file, 'key', loc);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new PkiError(
      `the key "${file}" is encrypted, and smtpd cannot ask for a passphrase: ` +
        `decrypt it with openssl pkey -in ${file} -out ${file}`,
      name,
      loc,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new PkiError(`"${file}" holds no PEM private key`, name, loc);
  }
  const type = key.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec') {
    throw new PkiError(`the key "${file}" is of type ${type}; smtpd uses RSA or ECDSA keys`, name, loc);
  }
  return { key, keyType: type };
}

function readText(name: string, file: string, what: string, loc: SourceLocation): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new PkiError(`cannot read the ${what} "${file}": ${reason}`, name, loc);
  }
}

/**
 * The DNS names a certificate is for: its subjectAltName entries, or,
 * in an old certificate without them, its subject's common name.
 */
export function certificateNames(cert: X509Certificate): string[] {
  const alt = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (alt.length > 0) return alt;
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}
