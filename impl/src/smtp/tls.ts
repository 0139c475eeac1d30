/**
 * TLS for a session: STARTTLS on a plain connection (RFC 3207), or from
 * the first byte on an `smtps` listener. The engine holds no keys: it is
 * given a function from a server name to a SecureContext (the crypto
 * part of the daemon builds those from the `pki` declarations), and the
 * name the client asks for with SNI picks the certificate.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { peekFirstRecord, serverNameOf } from '../crypto/client-hello.ts';

/** Server name (from SNI, or the listener's hostname when the client sends none) → context; `undefined` if none. */
export type TlsContexts = (servername: string) => SecureContext | undefined;

/** What a session knows about its TLS once the handshake is done. */
export interface TlsInfo {
  protocol: string;
  cipher: string;
  bits: number;
  sni?: string;
}

/**
 * Waits for the client's ClientHello and starts server-side TLS with the
 * context for the name it asks for (SNI), or for the listener's hostname
 * when it names none; `undefined` when there is no context at all or the
 * client went away. The reading is the crypto module's (see acceptTls
 * there for why Node's SNICallback is not used); this adds the engine's
 * fallback to its own hostname and never throws.
 */
export async function serverTls(socket: Socket, contexts: TlsContexts, hostname: string): Promise<{ tls: TLSSocket; sni?: string } | undefined> {
  let sni: string | undefined;
  try {
    sni = serverNameOf(await peekFirstRecord(socket));
  } catch {
    return undefined;
  }
  const context = (sni === undefined ? undefined : contexts(sni)) ?? contexts(hostname);
  if (!context) return undefined;
  const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
  return sni === undefined ? { tls } : { tls, sni };
}

export function tlsInfo(socket: TLSSocket, sni: string | undefined): TlsInfo {
  const cipher = socket.getCipher();
  const info: TlsInfo = { protocol: socket.getProtocol() ?? 'unknown', cipher: cipher.name, bits: cipherBits(cipher.name) };
  if (sni !== undefined) info.sni = sni;
  return info;
}

/**
 * The key length of a cipher suite, which OpenSSL's SSL_get_cipher_bits()
 * gives OpenSMTPD and Node does not: it is in the suite's name
 * (`TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES128-GCM-SHA256`), and
 * ChaCha20 keys are 256 bits.
 */
export function cipherBits(name: string): number {
  if (name.includes('CHACHA20')) return 256;
  const aes = /AES[_-]?(\d{3})/.exec(name);
  return aes ? Number(aes[1]) : 0;
}
