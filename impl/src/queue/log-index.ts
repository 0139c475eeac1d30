/**
 * What the `log` backend knows of its queue, in memory: every live
 * message, where its content is, and the latest text of each of its
 * envelopes and the segment that text was last written to. The log on
 * disk is the truth; this is the log read from start to end (at
 * start-up) and kept up to date since (after each flush), so that a
 * lookup never reads a file.
 *
 * It also keeps each segment's pins (see Segment): every change here that
 * makes a record live or dead adds or removes one. Pins are what decide
 * when a segment can go.
 */
import { messageIdOf } from './ids.ts';
import type { Segment } from './log-segments.ts';
import type { EnvelopeId, MessageId } from './types.ts';

/** Where a message's content is. */
export interface ContentPlace {
  segment: Segment;
  offset: number;
  length: number;
}

export interface LiveEnvelope {
  /** Its latest text: what loadEnvelope parses and a compaction copies. */
  text: string;
  /** The segment of the latest record written for it, and what it counts there. */
  segment: Segment;
  pinned: number;
}

export interface LiveMessage {
  content: ContentPlace;
  envelopes: Map<EnvelopeId, LiveEnvelope>;
}

export class LogIndex {
  readonly messages = new Map<MessageId, LiveMessage>();

  envelope(id: EnvelopeId): LiveEnvelope | undefined {
    return this.messages.get(messageIdOf(id))?.envelopes.get(id);
  }

  // #region index-commit
  /**
   * A COMMIT: the message with these envelopes, whose record is in
   * `content.segment`. It replaces a message of the same id (at start-up,
   * a compaction's copy replaces the original).
   */
  commit(msgid: MessageId, content: ContentPlace, envelopes: readonly { id: EnvelopeId; text: string }[]): void {
    this.forget(msgid);
    if (envelopes.length === 0) return;
    const live: LiveMessage = { content, envelopes: new Map() };
    pin(content.segment, content.length);
    for (const { id, text } of envelopes) {
      live.envelopes.set(id, { text, segment: content.segment, pinned: pin(content.segment, text.length) });
    }
    this.messages.set(msgid, live);
  }
  // #endregion index-commit

  /** A record of this envelope's text (an UPDATE, or a compaction's copy) is now in `segment`. */
  moved(id: EnvelopeId, segment: Segment): void {
    const entry = this.envelope(id);
    if (!entry) return; // deleted meanwhile
    unpin(entry.segment, entry.pinned);
    entry.segment = segment;
    entry.pinned = pin(segment, entry.text.length);
  }

  /** A compaction's copy of the content is now at `content`. */
  movedContent(msgid: MessageId, content: ContentPlace): void {
    const message = this.messages.get(msgid);
    if (!message) return;
    unpin(message.content.segment, message.content.length);
    message.content = content;
    pin(content.segment, content.length);
  }

  /** Forgets an envelope, and its message with the last one; false if it was not there. */
  delete(id: EnvelopeId): boolean {
    const msgid = messageIdOf(id);
    const message = this.messages.get(msgid);
    const entry = message?.envelopes.get(id);
    if (!message || !entry) return false;
    unpin(entry.segment, entry.pinned);
    message.envelopes.delete(id);
    if (message.envelopes.size === 0) this.forget(msgid);
    return true;
  }

  /** The messages whose content is in `segment`. */
  contentIn(segment: Segment): MessageId[] {
    return [...this.messages].filter(([, m]) => m.content.segment === segment).map(([msgid]) => msgid);
  }

  private forget(msgid: MessageId): void {
    const message = this.messages.get(msgid);
    if (!message) return;
    for (const entry of message.envelopes.values()) unpin(entry.segment, entry.pinned);
    unpin(message.content.segment, message.content.length);
    this.messages.delete(msgid);
  }
}

function pin(segment: Segment, bytes: number): number {
  segment.pins += 1;
  segment.liveBytes += bytes;
  return bytes;
}

function unpin(segment: Segment, bytes: number): void {
  segment.pins -= 1;
  segment.liveBytes -= bytes;
}
