/**
 * The real OpenSMTPD 6.8 (/usr/sbin/smtpd), run for opensmtpd.test.ts.
 *
 * smtpd runs as root in the foreground, in a mount namespace of its own
 * (`unshare -m`) where /etc/resolv.conf names a DNS server the test
 * controls (so that no session waits for DNS, unless a test wants the
 * greeting to wait), /run is empty (its control socket cannot clash with
 * another smtpd) and the spool is a temporary directory. Two of them
 * run: one with the default limits, one with small ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SMTPD = '/usr/sbin/smtpd';
const isRoot = process.getuid?.() === 0;
/** Why 6.8 cannot run here, or undefined when it can. */
export const unavailable = !existsSync(SMTPD) ? `${SMTPD} is not installed` : !isRoot ? 'smtpd must run as root' : undefined;

/** The limits of the second 6.8, for ours to be given the same. */
export const SMALL_LIMITS = { maxMessageSize: 1000, maxRecipients: 2 };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`smtpd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The DNS server of the 6.8s (and, through `pass`, of the engine they are
 * compared with): NXDOMAIN to every question, so that no client has a
 * name. OpenSMTPD's resolver (asr) takes no port in resolv.conf, hence
 * an address of its own on port 53. While `hold()` is in force the
 * answers wait, and so do the greetings, which come after reverse DNS.
 */
export class Dns {
  static readonly ADDRESS = '127.1.53.53';
  private held: (() => void)[] | undefined;

  private constructor(private readonly socket: UdpSocket, readonly address: string) {
    socket.on('message', (query, from) => {
      const answer = Buffer.from(query);
      answer[2] = 0x80 | (query[2]! & 0x01); // a response; RD as asked
      answer[3] = 0x83; // RA, NXDOMAIN
      answer.fill(0, 6, 12); // no answer, authority or additional records
      this.pass().then(() => socket.send(answer, from.port, from.address), () => {});
    });
  }

  /**
   * A test file that runs at the same time as another one needs an
   * address of its own: two sockets on one address and port would share
   * the questions, and a hold() in one file would not hold the other's.
   */
  static async start(address = Dns.ADDRESS): Promise<Dns> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(53, address, () => resolve()));
    return new Dns(socket, address);
  }

  /** Resolves when a question may be answered: at once, or once the hold is released. */
  pass(): Promise<void> {
    const held = this.held;
    return held ? new Promise((resolve) => held.push(resolve)) : Promise.resolve();
  }

  /** Holds every answer until the function returned is called. */
  hold(): () => void {
    const held: (() => void)[] = (this.held = []);
    return () => {
      this.held = undefined;
      for (const answer of held) answer();
    };
  }

  close(): void {
    this.socket.close();
  }
}

/** An OpenSMTPD 6.8 running for the tests. */
export interface Reference {
  port: number;
  spool: string;
  proc: ChildProcess;
  log: string;
}

/** The rules of the 6.8s of opensmtpd.test.ts: everything is relayed to a port where nothing listens, so it waits in the queue. */
const RELAY_ALL = ['action "out" relay host smtp://127.0.0.1:1', 'match from any for any action "out"'];

/**
 * Starts a 6.8 in `dir/name`, with `options` before its `listen` line and
 * `rules` (tables, actions, match rules) after it. `dir` holds the
 * resolv.conf it reads.
 */
async function startReference(dir: string, name: string, options: string[], started: Reference[], rules = RELAY_ALL): Promise<Reference> {
  const home = join(dir, name);
  const spool = join(home, 'spool');
  mkdirSync(spool, { recursive: true, mode: 0o711 });
  const port = await freePort();
  writeFileSync(join(home, 'smtpd.conf'), [
    ...options,
    `listen on 127.0.0.1 port ${port} hostname mx.test`,
    ...rules,
    '',
  ].join('\n'));
  const script = [
    `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
    'mount -t tmpfs tmpfs /run',
    `mount --bind ${spool} /var/spool/smtpd`,
    `exec ${SMTPD} -d -f ${home}/smtpd.conf`,
  ].join(' && ');
  const proc = spawn('unshare', ['-m', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reference: Reference = { port, spool, proc, log: '' };
  started.push(reference);
  proc.stdout!.on('data', (d: Buffer) => (reference.log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (reference.log += d.toString()));
  await waitForPort(port, 10_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${reference.log}`);
  });
  return reference;
}

/** Stops the 6.8s started, then the DNS server, and removes their directory. */
async function stopAll(started: Reference[], dns: Dns | undefined, dir: string): Promise<void> {
  for (const { proc } of started) {
    if (proc.exitCode !== null) continue;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
  dns?.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The DNS server and both 6.8s, and how to stop them. */
export interface References {
  dns: Dns;
  /** 6.8 with its default limits. */
  smtpd: Reference;
  /** 6.8 with `smtp max-message-size 1000` and `smtp limit max-rcpt 2` (SMALL_LIMITS). */
  small: Reference;
  stop(): Promise<void>;
}

export async function startReferences(): Promise<References> {
  const dir = mkdtempSync(join(tmpdir(), 'saf-opensmtpd-'));
  const started: Reference[] = [];
  let dns: Dns | undefined;
  const stop = () => stopAll(started, dns, dir);
  try {
    dns = await Dns.start();
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${dns.address}\n`);
    const [smtpd, small] = await Promise.all([
      startReference(dir, 'default', [], started),
      startReference(dir, 'small', ['smtp max-message-size 1000', 'smtp limit max-rcpt 2'], started),
    ]);
    return { dns, smtpd, small, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A 6.8 started by startReferenceWith(), and how to stop it and its DNS server. */
export interface OwnReference extends Reference {
  /** The temporary directory its files are in: `rules` may name files there. */
  dir: string;
  stop(): Promise<void>;
}

/**
 * One 6.8 with rules of the caller's (tables, actions, match rules), and
 * a DNS server of its own at `dnsAddress` (see Dns.start()). `files` are
 * written into its temporary directory first, which `rules` is given to
 * name them: `table aliases file:${dir}/aliases`.
 */
export async function startReferenceWith(
  setup: { files: Record<string, string>; rules: (dir: string) => string[] }, dnsAddress: string,
): Promise<OwnReference> {
  const dir = mkdtempSync(join(tmpdir(), 'saf-opensmtpd-'));
  const started: Reference[] = [];
  let dns: Dns | undefined;
  const stop = () => stopAll(started, dns, dir);
  try {
    dns = await Dns.start(dnsAddress);
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${dns.address}\n`);
    for (const [name, text] of Object.entries(setup.files)) writeFileSync(join(dir, name), text);
    const reference = await startReference(dir, 'own', [], started, setup.rules(dir));
    // The same object: its log goes on growing.
    return Object.assign(reference, { dir, stop });
  } catch (err) {
    await stop();
    throw err;
  }
}
