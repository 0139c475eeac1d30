/**
 * What the SMTP engine's tests share: an in-memory queue, a server on a
 * random port of 127.0.0.1, and a raw client that reads whole replies.
 */
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterEach } from 'vitest';
import type { IncomingMessage } from '../../src/queue/backend.ts';
import type { Envelope, EnvelopeId, MessageId } from '../../src/queue/types.ts';
import { createSmtpServer, type SmtpServer, type SmtpServerOptions } from '../../src/smtp/index.ts';

export interface StoredMessage {
  id: MessageId;
  chunks: Buffer[];
  state: 'open' | 'committed' | 'aborted';
  envelopes: Envelope[];
  /** The content as one string (latin1, so every octet shows). */
  readonly text: string;
}

/** A queue that keeps messages in memory; `failCommit` makes the next commits reject. */
export function memoryQueue() {
  const messages: StoredMessage[] = [];
  let next = 0x1a2b3c00;
  const control = { failCommit: false, failCreate: false };
  const queue = {
    async createMessage(): Promise<IncomingMessage> {
      if (control.failCreate) throw new Error('queue full');
      const id = next++ as MessageId;
      const stored: StoredMessage = {
        id, chunks: [], state: 'open', envelopes: [],
        get text() { return Buffer.concat(this.chunks).toString('latin1'); },
      };
      messages.push(stored);
      return {
        id,
        async write(chunk) { stored.chunks.push(Buffer.from(chunk)); },
        async commit(envelopes) {
          if (control.failCommit) throw new Error('disk full');
          stored.state = 'committed';
          stored.envelopes = envelopes.map((e, i) => ({
            ...e, id: ((BigInt(id) << 32n) | BigInt(i + 1)) as EnvelopeId, messageId: id,
          }));
          return stored.envelopes;
        },
        async abort() { stored.state = 'aborted'; },
      };
    },
  };
  return { queue, messages, control, committed: () => messages.filter((m) => m.state === 'committed') };
}

export interface TestServer {
  port: number;
  smtp: SmtpServer;
  store: ReturnType<typeof memoryQueue>;
  logs: string[];
  close(): Promise<void>;
}

const running: TestServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((s) => s.close()));
});

/** An engine on 127.0.0.1 and a random port, closed after the test. */
export async function startServer(options: Partial<SmtpServerOptions> = {}): Promise<TestServer> {
  const store = memoryQueue();
  const logs: string[] = [];
  const smtp = createSmtpServer({
    hostname: 'mx.test',
    queue: store.queue,
    logger: { info: (l) => logs.push(l), warn: (l) => logs.push(`warn: ${l}`) },
    ...options,
    limits: { authFailureDelayMs: 0, ...options.limits },
  });
  const server = createServer();
  smtp.listen(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closed = false;
  const test: TestServer = {
    port, smtp, store, logs,
    async close() {
      if (closed) return;
      closed = true;
      await smtp.close();
    },
  };
  running.push(test);
  return test;
}

/** A client that writes bytes and reads whole replies: no SMTP library in between. */
export class RawClient {
  private buffered = '';
  private waiting: (() => void) | undefined;
  ended = false;

  private constructor(public socket: Socket) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffered += d;
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  /** `allowHalfOpen`: the client keeps its end open after the server closes its own, until it closes it itself. */
  static async connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', ...options });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new RawClient(socket);
    clients.push(client);
    return client;
  }

  /** Connects with TLS from the first byte, as to an smtps port. */
  static async connectTls(port: number, options: ConnectionOptions = {}): Promise<RawClient> {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const client = new RawClient(socket);
    clients.push(client);
    return client;
  }

  /** Starts TLS on the connection, after the server's 220 to STARTTLS. */
  async startTls(options: ConnectionOptions = {}): Promise<TLSSocket> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket = secure;
    this.attach(secure);
    return secure;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next whole reply (all its lines, without CRLF), or `<closed>` if the server closed first. */
  async reply(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buffered);
      if (m) {
        this.buffered = this.buffered.slice(m[0].length);
        return m[0].replace(/\r\n$/, '').replace(/\r\n/g, '\n');
      }
      if (this.ended) return '<closed>';
      if (Date.now() > deadline) throw new Error(`no reply; have ${JSON.stringify(this.buffered)}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Sends a line (CRLF added) and returns the reply. */
  async command(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  /** Waits until the server has closed the connection. */
  async closed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connects, reads the greeting, says EHLO. */
export async function ehloClient(port: number, name = 'client.test'): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.reply();
  await c.command(`EHLO ${name}`);
  return c;
}

/** Only the first line's code of each reply, for compact assertions. */
export function codes(replies: string[]): number[] {
  return replies.map((r) => Number(r.slice(0, 3)));
}
