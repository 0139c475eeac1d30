/**
 * One daemon per spool.
 */
import { once } from 'node:events';
import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/** The socket's name in the spool. */
export const SPOOL_LOCK = 'smtpd.lock';

// #region spool-lock
/**
 * Two daemons on one spool would each recover it at start (a second one
 * empties `incoming/` under the first one's clients), and each would
 * schedule and deliver the same envelopes. OpenSMTPD refuses a second
 * start because its control socket already answers. This does the same
 * with a socket of its own in the spool, bound for as long as the daemon
 * runs: if the name is taken and a connection to it is answered, another
 * daemon is running; if the connection is refused, the name was left by
 * a daemon that died (a SIGKILL leaves it behind), and it is taken over.
 * The spool is 0700 and belongs to the queue's user, so nobody else can
 * put a socket there to keep the daemon from starting.
 */
export async function lockSpool(spool: string): Promise<SpoolLock> {
  const path = join(spool, SPOOL_LOCK);
  for (let attempt = 0; ; attempt++) {
    const server = createServer((socket) => socket.destroy());
    try {
      server.listen(path);
      await once(server, 'listening');
      server.unref();
      return { path, release: () => release(server, path) };
    } catch (err) {
      server.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 0) throw err;
    }
    if (await answers(path)) {
      throw new Error(`another smtpd is running on the spool ${spool} (its ${SPOOL_LOCK} socket answers): stop it first, or give this one another --spool`);
    }
    await unlink(path);
  }
}
// #endregion spool-lock

export interface SpoolLock {
  path: string;
  release(): Promise<void>;
}

/** Does something accept connections on the socket at `path`? */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function release(server: Server, path: string): Promise<void> {
  await new Promise((resolve) => server.close(resolve));
  await unlink(path).catch(() => {});
}
