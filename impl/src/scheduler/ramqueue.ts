/**
 * The scheduler's memory of every queued envelope: which to deliver now,
 * which later, which are out being delivered, and which senders are due
 * a delay warning. Named after OpenSMTPD's scheduler_ramqueue.c, whose
 * job it does.
 *
 * It is a plain data structure. Time is passed in on every call (seconds
 * since the epoch) and nothing here sets a timer or touches a file: the
 * scheduler process drives it, asking due() for work and nextWakeup()
 * for when to ask again, and carries out the Decisions it returns. That
 * keeps every rule testable with made-up clocks, and keeps the disk in
 * one place, the queue.
 *
 * Each envelope is either pending (waiting for its next try) or in
 * flight (handed out by due(), its outcome not yet reported). An
 * envelope is in flight from due() until done(), tempfail() or
 * permfail(); only then can it be handed out again, so one recipient
 * never has two deliveries running.
 */
import { nextTryAfter, type DispatcherKind } from './backoff.ts';
import { Heap } from './heap.ts';
import type {
  Decision, DueEnvelope, ListedEnvelope, SchedulerEntry, SchedulerOptions, WarnDecision,
} from './types.ts';

/** smtpd.conf(5): "The default is bounce warn-interval 4h, sending a single warning after four hours." */
export const DEFAULT_WARN_INTERVALS: readonly number[] = [4 * 60 * 60];
/** OpenSMTPD's default `scheduler limit max-inflight`. */
export const DEFAULT_MAX_INFLIGHT = 5000;

/** `bounce warn-interval` as the scheduler counts it: each delay once, none of zero, shortest first. */
export function warnIntervalsOf(intervals: readonly number[] = DEFAULT_WARN_INTERVALS): number[] {
  return [...new Set(intervals)].filter((d) => d > 0).sort((a, b) => a - b);
}

interface Slot {
  /** Our own copy: attempts, lastTryAt and warnings change here as the driver reports. */
  entry: SchedulerEntry & { warnings: number };
  kind: DispatcherKind;
  state: 'pending' | 'inflight';
  nextTryAt: number;
  /** The ticket that is current for this envelope; older tickets in the heaps are stale. */
  ticket: number;
  removed: boolean;
}

/** A place in a heap: when, which envelope, and which of its schedulings. */
interface Ticket {
  at: number;
  id: string;
  ticket: number;
}

/** Earlier time first; for the same time, lower id first, which keeps a message's envelopes together. */
const earlier = (a: Ticket, b: Ticket) => a.at < b.at || (a.at === b.at && a.id < b.id);

const ENVELOPE_ID = /^[0-9a-f]{16}$/;

export class RamQueue {
  private readonly slots = new Map<string, Slot>();
  /** Envelopes by message, to hand out a message's envelopes together. */
  private readonly messages = new Map<number, Set<Slot>>();
  /** Pending envelopes by dispatcher, earliest next try on top. */
  private readonly pending = new Map<string, Heap<Ticket>>();
  /** Pending envelopes that will be due a warning, earliest first. */
  private readonly warnings = new Heap<Ticket>(earlier);
  private readonly inflightBy = new Map<string, number>();
  private inflightCount = 0;
  private tickets = 0;

  private readonly kindOf: (dispatcher: string) => DispatcherKind;
  private readonly warnIntervals: readonly number[];
  private readonly maxInflight: number;
  private readonly maxPerDispatcher: number;

  constructor(options: SchedulerOptions) {
    this.kindOf = options.kindOf;
    this.warnIntervals = warnIntervalsOf(options.warnIntervals);
    this.maxInflight = options.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    this.maxPerDispatcher = options.maxInflightPerDispatcher ?? Infinity;
  }

  /** Envelopes known, pending or in flight. */
  get size(): number {
    return this.slots.size;
  }

  /** Envelopes handed out by due() whose outcome has not come back. */
  get inflight(): number {
    return this.inflightCount;
  }

  // #region add
  /**
   * Takes an envelope the queue has just committed, or found on disk at
   * start-up; returns when it will first be handed out.
   *
   * A new envelope (no attempts) is due at once, dated from its arrival
   * so that older mail goes first. A recovered one is due
   * when the daemon that stopped had planned: the schedule counts from
   * the message's arrival and skips past the last try (see backoff.ts),
   * and both are on disk, so a restart neither retries everything at once
   * nor pushes anything back. An envelope whose attempt was running when
   * the daemon stopped has no record of that attempt, and is tried again.
   */
  add(entry: SchedulerEntry, now: number): number {
    checkEntry(entry);
    if (this.slots.has(entry.id)) throw new Error(`scheduler: envelope ${entry.id} is already scheduled`);
    const slot: Slot = {
      entry: { ...entry, warnings: entry.warnings ?? 0 },
      kind: this.kindOf(entry.dispatcher),
      state: 'pending',
      nextTryAt: 0,
      ticket: 0,
      removed: false,
    };
    this.slots.set(entry.id, slot);
    let message = this.messages.get(entry.messageId);
    if (!message) this.messages.set(entry.messageId, (message = new Set()));
    message.add(slot);

    const next = entry.attempts === 0
      ? Math.min(entry.createdAt, now)
      : nextTryAfter(slot.kind, entry.createdAt, entry.attempts, entry.lastTryAt ?? entry.createdAt);
    this.schedule(slot, next);
    return slot.nextTryAt;
  }
  // #endregion add

  // #region due
  /**
   * Up to `max` envelopes to deliver now, oldest-due first, each now in
   * flight. When one envelope of a message is handed out, the other due
   * envelopes of that message for the same dispatcher follow it at once,
   * so that the driver can deliver them together (one SMTP transaction
   * with several RCPT TO, one read of the message). The in-flight limits
   * hold back what would exceed them; it stays pending.
   */
  due(now: number, max = Infinity): DueEnvelope[] {
    const out: DueEnvelope[] = [];
    while (out.length < max) {
      const slot = this.takeEarliest(now);
      if (!slot) break;
      this.handOut(slot, out);
      for (const sibling of this.siblings(slot)) {
        if (out.length >= max || !this.hasRoom(slot.entry.dispatcher)) break;
        if (sibling.state === 'pending' && sibling.nextTryAt <= now) this.handOut(sibling, out);
      }
    }
    return out;
  }
  // #endregion due

  /**
   * When the driver should call due() and warningsDue() again, or
   * undefined when nothing is waiting for a time. It may be in the past
   * (call at once). A dispatcher at its in-flight limit does not count:
   * its next envelope can only go when an outcome comes back, and the
   * driver calls due() after each outcome anyway.
   */
  nextWakeup(): number | undefined {
    let next: number | undefined;
    for (const [dispatcher, heap] of this.pending) {
      if (!this.hasRoom(dispatcher)) continue;
      const top = this.validTop(heap);
      if (top && (next === undefined || top.at < next)) next = top.at;
    }
    const warning = this.validTop(this.warnings);
    if (warning && (next === undefined || warning.at < next)) next = warning.at;
    return next;
  }

  /** The envelope was delivered: forget it; the queue deletes it. */
  done(id: string): Decision {
    this.forget(this.land(id, 'done'));
    return { do: 'remove', id };
  }

  // #region failures
  /**
   * The attempt failed, for now. The attempt is counted and the envelope
   * waits for its next retry, but never past its expiry: the last try is
   * made at the expiry time itself. Once an attempt fails at or after the
   * expiry, the envelope has expired and its sender gets a bounce with
   * the last error, as for a permanent failure.
   *
   * OpenSMTPD expires an envelope when its time comes, without trying it
   * again. Trying once more costs one attempt, and it means that a
   * bounce always reports a real last error, and that a server that came
   * back at the last minute (or while the daemon was down past the
   * expiry) still gets its mail.
   */
  tempfail(id: string, now: number): Decision {
    const slot = this.land(id, 'tempfail');
    if (slot.removed) return this.forgetRemoved(slot);
    const entry = slot.entry;
    entry.attempts += 1;
    entry.lastTryAt = now;
    if (now >= entry.expiresAt) {
      this.forget(slot);
      return { do: entry.bounce ? 'discard' : 'bounce', id, reason: 'expired', attempts: entry.attempts };
    }
    this.schedule(slot, nextTryAfter(slot.kind, entry.createdAt, entry.attempts, now));
    return { do: 'update', id, attempts: entry.attempts, lastTryAt: now, nextTryAt: slot.nextTryAt };
  }

  /** The attempt failed for good: the sender gets a bounce, unless this is a bounce itself. */
  permfail(id: string): Decision {
    const slot = this.land(id, 'permfail');
    if (slot.removed) return this.forgetRemoved(slot);
    this.forget(slot);
    const { entry } = slot;
    return { do: entry.bounce ? 'discard' : 'bounce', id, reason: 'permfail', attempts: entry.attempts + 1 };
  }
  // #endregion failures

  // #region warnings-due
  /**
   * Delay warnings to send now: pending envelopes that have been tried
   * and have been queued longer than the next warn interval they were
   * not warned for. Each is returned once: its warning count goes up
   * here, and the driver writes it to disk. When several intervals went
   * by unnoticed (the daemon was down), one warning covers them all.
   * Never for a bounce (its sender is `<>`, nobody to warn), never when
   * DSN NOTIFY leaves out DELAY, never once the envelope has expired
   * (its bounce is coming). Sorted by message, so the driver can send one
   * warning per message.
   */
  warningsDue(now: number): WarnDecision[] {
    const out: WarnDecision[] = [];
    for (let top = this.validTop(this.warnings); top && top.at <= now; top = this.validTop(this.warnings)) {
      this.warnings.pop();
      const slot = this.slots.get(top.id)!;
      const entry = slot.entry;
      if (now >= entry.expiresAt) continue;
      const passed = this.warnIntervals.filter((d) => entry.createdAt + d <= now);
      entry.warnings = passed.length;
      out.push({ do: 'warn', id: entry.id, messageId: entry.messageId, warnings: passed.length, delay: passed.at(-1)! });
      this.queueWarning(slot);
    }
    return out.sort((a, b) => a.messageId - b.messageId || (a.id < b.id ? -1 : 1));
  }
  // #endregion warnings-due

  /**
   * Forgets an envelope (`smtpctl remove`). A pending one goes at once; one
   * in flight goes when its attempt ends, whatever the outcome: its
   * Decision is then `remove`, never `bounce`. False if unknown.
   */
  remove(id: string): boolean {
    const slot = this.slots.get(id);
    if (!slot) return false;
    if (slot.state === 'inflight') slot.removed = true;
    else this.forget(slot);
    return true;
  }

  /** Removes every envelope of a message; returns how many there were. */
  removeMessage(messageId: number): number {
    const ids = [...(this.messages.get(messageId) ?? [])].map((s) => s.entry.id);
    for (const id of ids) this.remove(id);
    return ids.length;
  }

  /** Makes a pending envelope due now (`smtpctl schedule`); false if unknown or in flight. */
  scheduleNow(id: string, now: number): boolean {
    const slot = this.slots.get(id);
    if (!slot || slot.state !== 'pending') return false;
    this.schedule(slot, now);
    return true;
  }

  /** Every envelope, by id, for `smtpctl show queue`. */
  list(): ListedEnvelope[] {
    return [...this.slots.values()]
      .sort((a, b) => (a.entry.id < b.entry.id ? -1 : 1))
      .map(({ entry, state, nextTryAt, removed }) => ({
        id: entry.id,
        messageId: entry.messageId,
        dispatcher: entry.dispatcher,
        state,
        ...(state === 'pending' && { nextTryAt }),
        attempts: entry.attempts,
        ...(entry.lastTryAt !== undefined && { lastTryAt: entry.lastTryAt }),
        createdAt: entry.createdAt,
        expiresAt: entry.expiresAt,
        warnings: entry.warnings,
        bounce: entry.bounce === true,
        removed,
      }));
  }

  /** Makes the envelope pending, due at `at` but never later than its expiry. */
  private schedule(slot: Slot, at: number): void {
    slot.state = 'pending';
    slot.nextTryAt = Math.min(at, slot.entry.expiresAt);
    slot.ticket = ++this.tickets;
    let heap = this.pending.get(slot.entry.dispatcher);
    if (!heap) this.pending.set(slot.entry.dispatcher, (heap = new Heap(earlier)));
    heap.push({ at: slot.nextTryAt, id: slot.entry.id, ticket: slot.ticket });
    this.queueWarning(slot);
  }

  /** Puts the envelope's next warning in line, if it will have one. */
  private queueWarning(slot: Slot): void {
    const { entry } = slot;
    if (entry.bounce || entry.notifyDelay === false || entry.attempts === 0) return;
    const delay = this.warnIntervals[entry.warnings];
    if (delay === undefined) return;
    this.warnings.push({ at: entry.createdAt + delay, id: entry.id, ticket: slot.ticket });
  }

  /** The top of a heap after dropping stale tickets: envelopes gone, in flight, or rescheduled since. */
  private validTop(heap: Heap<Ticket>): Ticket | undefined {
    for (let top = heap.peek(); top; top = heap.peek()) {
      const slot = this.slots.get(top.id);
      if (slot && slot.state === 'pending' && slot.ticket === top.ticket) return top;
      heap.pop();
    }
    return undefined;
  }

  /** Takes the envelope due first, across the dispatchers that have room for one more. */
  private takeEarliest(now: number): Slot | undefined {
    let best: { top: Ticket; heap: Heap<Ticket> } | undefined;
    for (const [dispatcher, heap] of this.pending) {
      if (!this.hasRoom(dispatcher)) continue;
      const top = this.validTop(heap);
      if (top && top.at <= now && (!best || earlier(top, best.top))) best = { top, heap };
    }
    if (!best) return undefined;
    best.heap.pop();
    return this.slots.get(best.top.id);
  }

  private hasRoom(dispatcher: string): boolean {
    return this.inflightCount < this.maxInflight && (this.inflightBy.get(dispatcher) ?? 0) < this.maxPerDispatcher;
  }

  private handOut(slot: Slot, out: DueEnvelope[]): void {
    slot.state = 'inflight';
    slot.ticket = ++this.tickets;
    this.inflightCount++;
    this.inflightBy.set(slot.entry.dispatcher, (this.inflightBy.get(slot.entry.dispatcher) ?? 0) + 1);
    const { id, messageId, dispatcher, attempts } = slot.entry;
    out.push({ id, messageId, dispatcher, kind: slot.kind, attempts });
  }

  /** The other envelopes of the same message for the same dispatcher, by id. */
  private siblings(slot: Slot): Slot[] {
    return [...(this.messages.get(slot.entry.messageId) ?? [])]
      .filter((s) => s !== slot && s.entry.dispatcher === slot.entry.dispatcher)
      .sort((a, b) => (a.entry.id < b.entry.id ? -1 : 1));
  }

  /** An outcome came back: the envelope must be in flight, and no longer is. */
  private land(id: string, outcome: string): Slot {
    const slot = this.slots.get(id);
    if (!slot) throw new Error(`scheduler: ${outcome} for envelope ${id}, which is not scheduled`);
    if (slot.state !== 'inflight') throw new Error(`scheduler: ${outcome} for envelope ${id}, which is not in flight`);
    this.inflightCount--;
    this.inflightBy.set(slot.entry.dispatcher, this.inflightBy.get(slot.entry.dispatcher)! - 1);
    return slot;
  }

  private forgetRemoved(slot: Slot): Decision {
    this.forget(slot);
    return { do: 'remove', id: slot.entry.id };
  }

  /** Drops the envelope; its tickets go stale and are skipped when they come up. */
  private forget(slot: Slot): void {
    this.slots.delete(slot.entry.id);
    const message = this.messages.get(slot.entry.messageId);
    message?.delete(slot);
    if (message?.size === 0) this.messages.delete(slot.entry.messageId);
  }
}

/** The queue validates what it reads from disk; the scheduler checks what it is given, and says which envelope is wrong. */
function checkEntry(e: SchedulerEntry): void {
  const fail = (what: string) => {
    throw new Error(`scheduler: envelope ${JSON.stringify(e.id)}: ${what}`);
  };
  if (!ENVELOPE_ID.test(e.id)) fail('the id is not 16 lower-case hex digits');
  if (parseInt(e.id.slice(0, 8), 16) !== e.messageId) fail(`the id does not belong to message ${e.messageId}`);
  if (!Number.isFinite(e.createdAt) || !Number.isFinite(e.expiresAt)) fail('creation or expiry time is not a number');
  if (!Number.isInteger(e.attempts) || e.attempts < 0) fail(`attempts ${e.attempts} is not a count`);
  if (e.lastTryAt !== undefined && !Number.isFinite(e.lastTryAt)) fail('the last try time is not a number');
  if (e.warnings !== undefined && (!Number.isInteger(e.warnings) || e.warnings < 0)) fail(`warnings ${e.warnings} is not a count`);
  if (e.dispatcher === '') fail('no dispatcher');
}
