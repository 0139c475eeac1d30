/**
 * The queue process: the only one that opens the spool. It serves the
 * message path from smtp, and tells the scheduler about every envelope
 * on disk: those it finds at start-up, then each one committed.
 */
import { openQueueBackend, type Envelope } from '../../queue/index.ts';
import { schedulerChannel } from '../channels/queue.ts';
import { serveMessagePath } from '../message-path.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

/** Envelopes found at start-up go to the scheduler in batches of this many. */
const BATCH = 1000;

export async function startQueue(ctx: RoleContext): Promise<Role> {
  const { log } = ctx;
  const toScheduler = ctx.links.get('scheduler');
  const fromSmtp = ctx.links.get('smtp');
  if (!toScheduler || !fromSmtp) throw new Error('queue: missing a link to the scheduler or to smtp');

  const backend = await openQueueBackend('fs', {
    spool: ctx.spool,
    validate: { dispatchers: new Set(ctx.config.actions.map((a) => a.name)) },
    log: (line) => log.warn(line),
    ...(log.tracing('queue') && { trace: (line: string) => log.trace('queue', line) }),
  });

  const scheduler = new Peer({
    self: 'queue', peer: 'scheduler', transport: socketTransport(toScheduler), calls: schedulerChannel, log,
  });
  const schedule = (envelopes: Envelope[]) =>
    scheduler.request({
      type: 'scheduler.envelopes.add',
      envelopes: envelopes.map((e) => ({ id: e.id.toString(16).padStart(16, '0'), dispatcher: e.dispatcher, expiresAt: e.expiresAt })),
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
    transport: socketTransport(fromSmtp),
    backend,
    log,
    committed: (envelopes) => {
      schedule(envelopes).catch((err: Error) => log.warn(`warn: queue: cannot reach the scheduler: ${err.message}`));
    },
  });

  return {
    stop: async () => {
      smtp.close();
      scheduler.close();
      await backend.close();
    },
  };
}
