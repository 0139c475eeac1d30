/**
 * The scheduler: which envelopes wait for delivery, in memory. The queue
 * tells it about each envelope it commits. There is no dispatcher to
 * hand them to yet, so for now it only keeps them and says how many.
 */
import { schedulerChannel } from '../channels/queue.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

interface Waiting {
  dispatcher: string;
  expiresAt: number;
}

export async function startScheduler(ctx: RoleContext): Promise<Role> {
  const waiting = new Map<string, Waiting>();
  const socket = ctx.links.get('queue');
  if (!socket) throw new Error('scheduler: no link to the queue');
  const queue = new Peer({
    self: 'scheduler',
    peer: 'queue',
    transport: socketTransport(socket),
    log: ctx.log,
    serves: {
      channel: schedulerChannel,
      handlers: {
        'scheduler.envelopes.add': ({ envelopes }) => {
          for (const e of envelopes) {
            waiting.set(e.id, { dispatcher: e.dispatcher, expiresAt: e.expiresAt });
            ctx.log.trace('scheduler', `scheduler: envelope ${e.id} for ${e.dispatcher} scheduled`);
          }
          return { scheduled: waiting.size };
        },
      },
    },
  });
  return {
    stop: async () => {
      ctx.log.debug(`debug: scheduler: ${waiting.size} envelope(s) waiting at shutdown`);
      queue.close();
    },
  };
}
