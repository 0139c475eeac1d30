/**
 * Starting TLS as a server with the pki the client asks for.
 *
 * Node's own way, an SNICallback, does not do it reliably: Node adds the
 * chosen context's certificate to the listener's default one instead of
 * replacing it (nodejs/node#54235). With an RSA pki as the default and an
 * ECDSA pki chosen by name, TLS 1.2 picks by cipher order and usually
 * serves the RSA one; the other way round, TLS 1.3 serves the ECDSA
 * default. So we read the name ourselves, from the client's first
 * message, and start TLS with one context, already the right one.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type TLSSocketOptions } from 'node:tls';
import type { TlsContextSelector } from './tls-contexts.ts';

/** A TLS record: 1 byte of type, 2 of version, 2 of length, then at most 16 KiB (RFC 8446, 5.1). */
const RECORD_HEADER = 5;
const MAX_RECORD = RECORD_HEADER + 16384 + 256;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;
const HOST_NAME = 0;

export type AcceptTlsOptions = Omit<TLSSocketOptions, 'isServer' | 'secureContext' | 'SNICallback'>;

// #region accept-tls
/**
 * Starts server-side TLS on `socket` (after STARTTLS, or at once on an
 * smtps port). The client speaks first in TLS: its ClientHello names the
 * host it wants (RFC 6066's server_name extension). We wait for that
 * record, read the name, and put the bytes back into the socket with
 * unshift(), where the TLS layer will read them as if we had never
 * looked. Then we start TLS with the context for that name; a client that
 * names no host gets the listener's own pki.
 */
export async function acceptTls(
  socket: Socket,
  select: TlsContextSelector,
  options: AcceptTlsOptions = {},
): Promise<TLSSocket> {
  const hello = await peekFirstRecord(socket);
  const servername = serverNameOf(hello);
  return new TLSSocket(socket, { ...options, isServer: true, secureContext: select(servername) });
}
// #endregion accept-tls

/**
 * Reads from `socket` until it holds the whole ClientHello (or anything
 * that is not one), and gives those bytes back to the socket before
 * returning a copy of them. Fails if the client closes before that. The
 * hello is usually one record, but TLS lets a client split a handshake
 * message over several (RFC 8446 5.1), and the name may be in the last.
 */
export function peekFirstRecord(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const finish = (error?: Error): void => {
      socket.off('data', onData).off('end', onEnd).off('error', finish);
      socket.pause();
      if (error) return reject(error);
      if (buffered.length > 0) socket.unshift(buffered);
      resolve(buffered);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (recordComplete(buffered)) finish();
    };
    // A stream that has ended takes nothing back (unshift() would fail): there is no handshake to start.
    const onEnd = (): void => finish(new Error('the client closed the connection before its TLS hello'));
    socket.on('data', onData).on('end', onEnd).on('error', finish);
    socket.resume();
  });
}

/**
 * Do we hold a whole ClientHello, or know it is not one? Past
 * MAX_RECORD octets we stop waiting, as for a single record: that is
 * what a session may make us hold before its handshake.
 */
function recordComplete(bytes: Buffer): boolean {
  return bytes[0] !== HANDSHAKE || bytes.length >= MAX_RECORD || !firstHandshake(bytes).more;
}

/**
 * The first handshake message, from the handshake records at the start
 * of `bytes` (as much of it as is there), and whether to wait for more
 * of it: its records are not all here yet. A record of another type
 * ends it, and so does a first message that is not a ClientHello.
 */
function firstHandshake(bytes: Buffer): { message: Buffer; more: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const message = Buffer.concat(parts);
    if (message.length > 0 && message[0] !== CLIENT_HELLO) return { message, more: false };
    // Whole; or longer than we wait for: then no more records are read (TLS will judge it).
    if (message.length >= 4 && message.length >= Math.min(4 + message.readUIntBE(1, 3), MAX_RECORD)) return { message, more: false };
    if (at + RECORD_HEADER > bytes.length) return { message, more: true };
    if (bytes[at] !== HANDSHAKE) return { message, more: false };
    const end = at + RECORD_HEADER + bytes.readUInt16BE(at + 3);
    parts.push(bytes.subarray(at + RECORD_HEADER, Math.min(end, bytes.length)));
    if (end > bytes.length) return { message: Buffer.concat(parts), more: true };
    at = end;
  }
}

/**
 * The host name in a ClientHello (one record, or several that carry it
 * in pieces), or undefined if it names none or is not one. The layout
 * is RFC 8446's (4.1.2), which TLS 1.2's shares:
 *
 *     record header (5) | handshake type (1) length (3) | version (2)
 *     random (32) | session id <1> | cipher suites <2> | compression <1>
 *     extensions <2>: each type (2) and data <2>
 *
 * where <n> is a vector preceded by its length in n bytes. The
 * server_name extension holds a list <2> of entries: type (1), name <2>.
 */
export function serverNameOf(record: Buffer): string | undefined {
  if (record[0] !== HANDSHAKE || record.length < RECORD_HEADER) return undefined;
  // The hello may span several records: read their handshake bytes as one.
  const hello = firstHandshake(record).message;
  if (hello[0] !== CLIENT_HELLO) return undefined;
  const reader = new Reader(hello, 4, hello.length);
  reader.skip(2 + 32);
  reader.vector(1); // session id
  reader.vector(2); // cipher suites
  reader.vector(1); // compression methods
  const extensions = reader.vector(2);
  while (extensions?.more()) {
    const type = extensions.uint16();
    const data = extensions.vector(2);
    if (type !== SERVER_NAME_EXTENSION || !data) continue;
    const names = data.vector(2);
    while (names?.more()) {
      const nameType = names.uint8();
      const name = names.vector(2);
      if (nameType === HOST_NAME && name) return name.text();
    }
  }
  return undefined;
}

/** A cursor over bytes [at, end) that gives up (returns undefined) rather than read past the end. */
class Reader {
  constructor(
    private readonly bytes: Buffer,
    private at: number,
    private readonly end: number,
  ) {}

  more(): boolean {
    return this.at < this.end;
  }

  skip(count: number): void {
    this.at += count;
  }

  uint8(): number | undefined {
    return this.at + 1 <= this.end ? this.bytes[this.at++] : undefined;
  }

  uint16(): number | undefined {
    if (this.at + 2 > this.end) return undefined;
    this.at += 2;
    return this.bytes.readUInt16BE(this.at - 2);
  }

  /** The vector at the cursor, whose length takes `size` bytes; the cursor moves past it. */
  vector(size: 1 | 2): Reader | undefined {
    const length = size === 1 ? this.uint8() : this.uint16();
    if (length === undefined || this.at + length > this.end) {
      this.at = this.end;
      return undefined;
    }
    this.at += length;
    return new Reader(this.bytes, this.at - length, this.at);
  }

  text(): string {
    return this.bytes.toString('latin1', this.at, this.end);
  }
}
