/**
 * The crypto subsystem: password hashes as crypt(3) writes them
 * (password.ts), checking SMTP AUTH against a credentials table
 * (credentials.ts), and the TLS side of listeners: pkis (pki.ts), the
 * choice among them by SNI (tls-contexts.ts), and starting TLS with the
 * chosen one (client-hello.ts).
 */
export { crypt, hashMethod, hashPassword, randomSalt, verifyPassword, type HashMethod, type HashOptions } from './password.ts';
export { checkCredentials, type PasswordCheck } from './credentials.ts';
export { PasswordThread } from './password-thread.ts';
export { PkiError, certificateNames, loadPki, loadPkis, type LoadedPki } from './pki.ts';
export {
  selectPki,
  sniCallback,
  tlsContextsFor,
  type TlsContextOptions,
  type TlsContextSelector,
} from './tls-contexts.ts';
export { acceptTls, serverNameOf, type AcceptTlsOptions } from './client-hello.ts';
