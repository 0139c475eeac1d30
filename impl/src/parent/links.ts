/**
 * Sockets between children, made by the parent.
 *
 * Node has no socketpair(2). The parent makes the equivalent: a Unix
 * socket server on a path in a private directory (mode 0700, owned by the
 * daemon's user: root when started as root), one
 * connection to it from the parent itself, and then each end of that
 * connection goes to one child over its IPC channel (the descriptor
 * travels as SCM_RIGHTS; the parent's copy is closed once sent). The path
 * is removed as soon as the connection exists, so no process can ever
 * connect to it again: like a socketpair, the two ends know no one else.
 *
 * The alternative, relaying every message through the parent, costs a
 * second hop, twice the JSON, and a parent that reads the mail it relays;
 * impl/bench/ipc-roundtrip.ts measures both.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// #region socket-pair
/** Two connected Unix-domain stream sockets, made in a private directory that is gone when this returns. */
export async function socketPair(): Promise<[Socket, Socket]> {
  const dir = await mkdtemp(join(tmpdir(), 'smtpd-link-')); // mode 0700, owned by the parent
  const path = join(dir, 'link');
  const server = createServer({ pauseOnConnect: true });
  try {
    server.listen(path);
    await once(server, 'listening');
    const client = connect({ path });
    const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
    client.pause();
    return [client, accepted as Socket];
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
// #endregion socket-pair
