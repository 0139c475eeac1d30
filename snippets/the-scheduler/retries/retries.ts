// One envelope whose every delivery attempt fails for now, from its
// arrival to its bounce, with a clock we move by hand. Halfway, the
// daemon stops and starts again from what the queue wrote on disk.
import { loadConfig } from '@saf/impl/config';
import {
  RamQueue, schedulerOptions, type Decision, type DispatcherKind, type SchedulerEntry,
} from '../../../impl/src/scheduler/index.ts';

const { config, errors } = loadConfig('smtpd.conf');
if (errors.length > 0) throw new Error(errors.join('\n'));
const options = schedulerOptions(config);

// 1. How often an envelope that always fails is tried before it bounces,
//    with the default queue ttl of 4 days.
const FOUR_DAYS = 4 * 24 * 3600;
console.log('Tries before a bounce, with the default ttl of 4 days:');
for (const [kind, base] of [['local', 10], ['relay', 400]] as const) {
  const ours = triesUntilBounce(kind, FOUR_DAYS);
  // OpenSMTPD 6.8: base * n² after arrival, no cap; expired before a try at the expiry.
  let theirs = 0;
  while (base * theirs * theirs < FOUR_DAYS) theirs++;
  console.log(`  ${kind.padEnd(5)}  ${String(ours).padStart(3)} here, ${theirs} in OpenSMTPD 6.8`);
}

// 2. One envelope for "outbound" (relay, ttl 12h), arriving at 09:00 UTC.
const arrival = Date.UTC(2024, 0, 15, 9, 0, 0) / 1000;
const ttl = options.ttlOf('outbound');
const disk: SchedulerEntry = {
  id: '1a2b3c4d00000001', messageId: 0x1a2b3c4d, dispatcher: 'outbound',
  createdAt: arrival, expiresAt: arrival + ttl, attempts: 0, warnings: 0,
};
console.log(`\nAn envelope for "outbound" (${options.kindOf('outbound')}, ttl ${ttl / 3600}h) arrives at ${clock(arrival)}; every try fails with a 421:`);

let ramqueue = new RamQueue(options);
ramqueue.add({ ...disk }, arrival);
run(ramqueue, arrival, (now) => now >= arrival + 3 * 3600);

// The daemon stops; the scheduler's memory is gone. At 15:30 it starts
// again, and the queue hands it the envelope as it is on disk.
console.log(`  -- the daemon stops. On disk: ${disk.attempts} attempts, the last at ${clock(disk.lastTryAt!)}, ${disk.warnings} warning(s) sent`);
const restart = arrival + 6.5 * 3600;
ramqueue = new RamQueue(options);
const first = ramqueue.add({ ...disk }, restart);
console.log(`  -- started again at ${clock(restart)}; the next try was due at ${clock(first)}, so it is due now`);
run(ramqueue, restart, () => false);

/**
 * Drives the ramqueue as the scheduler process does: wake up when it says,
 * but never before `start` (a wake-up time may be in the past), deliver
 * what is due, send the warnings that are due.
 */
function run(rq: RamQueue, start: number, stopAfter: (now: number) => boolean): void {
  for (let next = rq.nextWakeup(); next !== undefined; next = rq.nextWakeup()) {
    const now = Math.max(next, start);
    for (const envelope of rq.due(now)) {
      const decision = rq.tempfail(envelope.id, now);
      record(decision);
      console.log(`  ${clock(now)}  try ${envelope.attempts + 1} fails; ${describe(decision)}`);
    }
    for (const warning of rq.warningsDue(now)) {
      record(warning);
      console.log(`  ${clock(now)}  delay warning ${warning.warnings} (for ${warning.delay / 3600}h)`);
    }
    if (stopAfter(now)) return;
  }
}

/** What the queue writes to disk after a decision, so that a restart starts from it. */
function record(decision: Decision): void {
  if (decision.do === 'update') Object.assign(disk, { attempts: decision.attempts, lastTryAt: decision.lastTryAt });
  if (decision.do === 'warn') disk.warnings = decision.warnings;
}

function describe(decision: Decision): string {
  switch (decision.do) {
    case 'update': return `next try at ${clock(decision.nextTryAt)}`;
    case 'bounce': return `${decision.reason} after ${decision.attempts} attempts: bounce`;
    default: return decision.do;
  }
}

/** How many attempts an envelope makes before its bounce, when every one fails. */
function triesUntilBounce(kind: DispatcherKind, ttl: number): number {
  const rq = new RamQueue({ kindOf: () => kind, warnIntervals: [] });
  rq.add({ id: '0000000100000001', messageId: 1, dispatcher: kind, createdAt: 0, expiresAt: ttl, attempts: 0 }, 0);
  for (let now = rq.nextWakeup(); now !== undefined; now = rq.nextWakeup()) {
    for (const envelope of rq.due(now)) {
      const decision = rq.tempfail(envelope.id, now);
      if (decision.do === 'bounce') return decision.attempts;
    }
  }
  throw new Error('no bounce');
}

/** Seconds since the epoch as the time of day, `09:00:00` (UTC; all of this happens on one day). */
function clock(t: number): string {
  return new Date(t * 1000).toISOString().slice(11, 19);
}

