/**
 * TLS for a session: STARTTLS on a plain connection (RFC 3207), or from
 * the first byte on an `smtps` listener. The engine holds no keys: it is
 * given a function from a server name to a SecureContext (the crypto
 * part of the daemon builds those from the `pki` declarations), and the
 * name the client asks for with SNI picks the certificate.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

/** Server name (from SNI, or the listener's hostname when the client sends none) → context; `undefined` if none. */
export type TlsContexts = (servername: string) => SecureContext | undefined;

/** What a session knows about its TLS once the handshake is done. */
export interface TlsInfo {
  protocol: string;
  cipher: string;
  bits: number;
  sni?: string;
}

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;

// #region client-hello
/**
 * Waits for the client's first TLS record, the ClientHello, and finds
 * the server name it asks for (SNI, RFC 6066 3), then puts the bytes back
 * for the TLS socket to read, and builds that socket with the right
 * certificate from the start.
 *
 * Node has SNICallback for this, but in Node 20 a context it returns
 * whose key type differs from the first context's is not used for a TLS
 * 1.2 client (nodejs/node#54235): with an RSA certificate for the
 * listener's own name, a client asking for a name with an ECDSA
 * certificate would still get the RSA one. Reading the name first avoids
 * the question: there is only ever one context.
 */
export function serverTls(socket: Socket, contexts: TlsContexts, hostname: string): Promise<{ tls: TLSSocket; sni?: string } | undefined> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      if (bytes.length < recordLength(bytes)) return;
      socket.pause();
      socket.off('data', onData);
      socket.unshift(bytes);
      const sni = serverName(bytes);
      const context = (sni === undefined ? undefined : contexts(sni)) ?? contexts(hostname);
      if (!context) return resolve(undefined);
      const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
      resolve(sni === undefined ? { tls } : { tls, sni });
    };
    socket.on('data', onData);
  });
}

/** How many bytes the first record takes: its 5-byte header and its body (RFC 8446 5.1); 0 if it is not TLS. */
function recordLength(bytes: Buffer): number {
  if (bytes.length < 5) return 5;
  return bytes[0] === HANDSHAKE ? 5 + bytes.readUInt16BE(3) : 0;
}

/**
 * The host name in a ClientHello record, or `undefined` if it has none
 * (or is malformed: the handshake will then fail on its own). The layout
 * is RFC 8446 4.1.2: version, random, session id, cipher suites,
 * compression methods, then the extensions, of which server_name is 0.
 */
export function serverName(record: Buffer): string | undefined {
  if (record[0] !== HANDSHAKE || record[5] !== CLIENT_HELLO) return undefined;
  let at = 5 + 4 + 2 + 32; // record header, handshake header, version, random
  const skip = (lengthBytes: 1 | 2) => {
    if (at + lengthBytes > record.length) return false;
    at += lengthBytes + (lengthBytes === 1 ? record[at]! : record.readUInt16BE(at));
    return at <= record.length;
  };
  if (!skip(1) || !skip(2) || !skip(1) || at + 2 > record.length) return undefined; // session id, suites, compression
  const end = Math.min(record.length, at + 2 + record.readUInt16BE(at));
  for (at += 2; at + 4 <= end; at += 4 + record.readUInt16BE(at + 2)) {
    if (record.readUInt16BE(at) !== SERVER_NAME) continue;
    const entry = at + 6; // extension header, then the list's length
    if (entry + 3 > end || record[entry] !== 0 /* host_name */) return undefined;
    const length = record.readUInt16BE(entry + 1);
    if (entry + 3 + length > end) return undefined;
    return record.toString('latin1', entry + 3, entry + 3 + length).toLowerCase();
  }
  return undefined;
}
// #endregion client-hello

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
