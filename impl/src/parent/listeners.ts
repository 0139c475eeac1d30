/**
 * The listening sockets: what each `listen on` line names, resolved to
 * addresses, and bound by the parent while it is root.
 */
import { lookup } from 'node:dns/promises';
import { createServer, isIP, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config, ListenDecl } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { ListenerInfo } from '../proc/channels/control.ts';

export interface BoundListener {
  info: ListenerInfo;
  server: Server;
}

/** A listener that cannot be bound; the message is the whole line the operator reads. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** The port a listener uses when its line gives none: 465 for smtps, 25 otherwise. */
export function listenerPort(decl: ListenDecl): number {
  return decl.port ?? (decl.tls?.mode === 'smtps' ? 465 : 25);
}

/**
 * The addresses a `listen on NAME` means, as OpenSMTPD reads NAME: an
 * address (`127.0.0.1`, `::1`); an interface (`lo`, `eth0`), meaning each
 * of its addresses; `all`, meaning every interface's; otherwise a host
 * name (`localhost`), meaning what it resolves to. `inet4` or `inet6`
 * on the line keeps one family.
 */
export async function listenerAddresses(decl: ListenDecl & { on: { kind: 'interface' } }): Promise<string[]> {
  const { name } = decl.on;
  const family = decl.family === 'inet4' ? 4 : decl.family === 'inet6' ? 6 : undefined;
  const keep = (address: string) => family === undefined || isIP(address) === family;
  if (isIP(name)) return keep(name) ? [name] : [];
  const interfaces = networkInterfaces();
  const ofInterface = (ifname: string) =>
    (interfaces[ifname] ?? []).map((i) => (i.family === 'IPv6' && i.scopeid ? `${i.address}%${ifname}` : i.address));
  if (name === 'all') return Object.keys(interfaces).flatMap(ofInterface).filter(keep);
  if (interfaces[name]) return ofInterface(name).filter(keep);
  try {
    const found = await lookup(name, { all: true, ...(family && { family }) });
    return [...new Set(found.map((a) => a.address))];
  } catch {
    throw new ListenError(`${where(decl)}: no interface, address or host named "${name}"`);
  }
}

// #region bind-listeners
/**
 * Binds every listener, as root, before any child exists, so that a
 * configuration that cannot work (a port in use, port 25 without root)
 * stops the daemon before it has started anything. The sockets are
 * created with pauseOnConnect: until smtp is ready to take the
 * listeners, a client that connects is accepted by the parent, and held,
 * unread, to be handed over with them (daemon.ts).
 */
export async function bindListeners(config: Config, log: Logger): Promise<BoundListener[]> {
  const bound: BoundListener[] = [];
  try {
    for (const [index, decl] of config.listeners.entries()) {
      if (decl.on.kind === 'socket') {
        log.warn(`warn: ${where(decl)}: listen on socket: the local enqueuer's socket is not built yet; skipped`);
        continue;
      }
      const port = listenerPort(decl);
      const addresses = await listenerAddresses({ ...decl, on: decl.on });
      if (addresses.length === 0) throw new ListenError(`${where(decl)}: "${decl.on.name}" has no address to listen on`);
      for (const address of addresses) {
        const server = await listen(address, port);
        log.debug(`debug: listening on ${address} port ${port}`);
        bound.push({
          server,
          info: {
            address, port, statement: index + 1,
            ...(decl.tag && { tag: decl.tag }),
            ...(decl.hostname && { hostname: decl.hostname }),
            ...(decl.tls && { tls: decl.tls.mode }),
            ...(decl.pki && { pki: decl.pki }),
          },
        });
      }
    }
  } catch (err) {
    for (const b of bound) b.server.close();
    throw err;
  }
  return bound;
}

function listen(address: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true });
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(bindFailure(address, port, err))));
    server.listen({ host: address, port, exclusive: true }, () => resolve(server));
  });
}

/** The line for a failed bind(2), with what to do about it. */
export function bindFailure(address: string, port: number, err: NodeJS.ErrnoException): string {
  const at = `cannot listen on ${address} port ${port}`;
  switch (err.code) {
    case 'EACCES':
      return port < 1024
        ? `${at}: permission denied: ports below 1024 need root; run smtpd as root, or use a port above 1023 (listen on ... port 2525)`
        : `${at}: permission denied`;
    case 'EADDRINUSE':
      return `${at}: address already in use: another server listens there`;
    case 'EADDRNOTAVAIL':
      return `${at}: no interface of this machine has that address`;
    default:
      return `${at}: ${err.message}`;
  }
}
// #endregion bind-listeners

function where(decl: ListenDecl): string {
  return `${decl.loc.file}:${decl.loc.line}`;
}
