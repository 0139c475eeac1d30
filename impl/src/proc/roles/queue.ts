/**
 * The queue process: the only one that opens the spool. It serves the
 * message path from smtp, tells the scheduler about every envelope on
 * disk (those it finds at start-up, then each one committed), and
 * carries out the scheduler's requests: deliver, bounce, warn
 * (queue-delivery.ts).
 */
import { openQueueBackend, type Envelope } from '../../queue/index.ts';
import { queueDeliveryChannel, schedulerChannel } from '../channels/delivery.ts';
import { lookupChannel } from '../channels/lookup.ts';
import { serveMessagePath } from '../message-path.ts';
import { Peer } from '../peer.ts';
import { QueueDelivery, scheduledEntryOf } from '../queue-delivery.ts';
import type { Role, RoleContext } from '../role.ts';
import { StorageTrouble } from '../storage-trouble.ts';
import { socketTransport } from '../transport.ts';

/** Envelopes found at start-up go to the scheduler in batches of this many. */
const BATCH = 1000;

export async function startQueue(ctx: RoleContext): Promise<Role> {
  const { log, config } = ctx;
  const toScheduler = ctx.links.get('scheduler');
  const fromSmtp = ctx.links.get('smtp');
  const toDispatcher = ctx.links.get('dispatcher');
  const toLookup = ctx.links.get('lookup');
  if (!toScheduler || !fromSmtp || !toDispatcher || !toLookup) {
    throw new Error('queue: missing a link to the scheduler, smtp, the dispatcher or lookup');
  }

  const backend = await openQueueBackend(ctx.queueBackend, {
    spool: ctx.spool,
    validate: { dispatchers: new Set(config.actions.map((a) => a.name)) },
    log: (line) => log.warn(line),
    ...(log.tracing('queue') && { trace: (line: string) => log.trace('queue', line) }),
  });

  const entryOf = scheduledEntryOf(config);
  const lookup = new Peer({ self: 'queue', peer: 'lookup', transport: socketTransport(toLookup), calls: lookupChannel, log });
  let delivery: QueueDelivery | undefined;
  const scheduler = new Peer({
    self: 'queue',
    peer: 'scheduler',
    transport: socketTransport(toScheduler),
    calls: schedulerChannel,
    log,
    serves: {
      channel: queueDeliveryChannel,
      handlers: {
        'queue.deliver': ({ id }) => delivery!.deliver(id),
        'queue.bounce': async ({ ids, reason }) => ({ removed: await delivery!.bounce(ids, reason) }),
        'queue.warn': async ({ ids }) => ({ warned: await delivery!.warn(ids) }),
      },
    },
  });
  const schedule = (envelopes: Envelope[]) =>
    scheduler.request({ type: 'scheduler.envelopes.add', envelopes: envelopes.map(entryOf) });
  // Envelopes committed during one turn of the event loop (a group commit
  // resolves many messages at once) are told to the scheduler together,
  // in one notice, at the end of the turn. A notice has no answer: the
  // queue has nothing to do with one (the envelopes are on disk already,
  // and a scheduler that died takes the daemon down), and an answer
  // would wake the queue once more per commit for nothing.
  let toSchedule: Envelope[] = [];
  const scheduleLater = (envelopes: Envelope[]) => {
    if (toSchedule.length === 0) {
      setImmediate(() => {
        const batch = toSchedule;
        toSchedule = [];
        scheduler.notify({ type: 'scheduler.envelopes.add', envelopes: batch.map(entryOf) });
      });
    }
    toSchedule.push(...envelopes);
  };
  delivery = new QueueDelivery({
    config, backend, log, dispatcher: socketTransport(toDispatcher), lookup, schedule: scheduleLater,
  });

  let recovered = 0;
  let batch: Envelope[] = [];
  for await (const envelope of backend.recover()) {
    batch.push(envelope);
    if (batch.length === BATCH) {
      await schedule(batch);
      recovered += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) await schedule(batch);
  recovered += batch.length;
  log.info(`info: queue: ${recovered} envelope(s) in the spool at start-up`);

  const smtp = serveMessagePath({
    transport: socketTransport(fromSmtp), backend, log, committed: scheduleLater, trouble: new StorageTrouble(log, ctx.spool),
  });

  return {
    stop: async () => {
      smtp.close();
      scheduler.close();
      delivery?.close();
      lookup.close();
      await backend.close();
    },
  };
}
