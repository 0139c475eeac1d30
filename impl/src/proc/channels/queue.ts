/**
 * The message path, smtp → queue, on a socket of its own (see links.ts):
 * create a message, send its content as chunk frames tagged with its id,
 * then commit it with its envelopes or abort it. Requests and chunks share
 * the one socket, so a commit can never overtake the last chunk of its
 * message: the queue reads them in the order smtp wrote them.
 */
import type { Envelope, EnvelopeId, MessageId } from '../../queue/types.ts';
import { channel, type RequestOf } from '../protocol.ts';
import { array, hex, nullable, number, object, oneOf, optional, string, uint32, type Infer } from '../schema.ts';

export const mailAddress = object({ user: string, domain: string });

const origin = object({
  tag: optional(string),
  clientAddress: string,
  clientName: optional(string),
  helo: string,
  authUser: optional(string),
  tls: optional(object({ protocol: string, cipher: string, bits: number })),
});

const dsn = object({
  notify: optional(array(oneOf(['SUCCESS', 'FAILURE', 'DELAY', 'NEVER']), 4)),
  orcpt: optional(string),
  ret: optional(oneOf(['FULL', 'HDRS'])),
  envid: optional(string),
});

export const localDelivery = object({
  user: string,
  kind: oneOf(['mailbox', 'file', 'command']),
  target: optional(string),
  source: optional(object({ kind: oneOf(['alias', 'virtual', 'forward']), where: string })),
  subaddress: optional(string),
});

/** An envelope before the queue has given it an id: what smtp commits. */
const envelopeDraft = object({
  sender: nullable(mailAddress),
  recipient: mailAddress,
  originalRecipient: mailAddress,
  dispatcher: string,
  origin,
  dsn: optional(dsn),
  createdAt: number,
  expiresAt: number,
  attempts: uint32,
  lastTryAt: optional(number),
  lastError: optional(string),
  delivery: optional(localDelivery),
  warnings: optional(uint32),
});
export type EnvelopeDraft = Omit<Envelope, 'id' | 'messageId'>;

/** A committed envelope on the wire: the 64-bit id as 16 hex digits, since JSON has no bigint. */
export const wireEnvelope = object({ ...envelopeDraft.shape, id: hex(16), messageId: uint32 });
export type WireEnvelope = Infer<typeof wireEnvelope>;

export function toWire(e: Envelope): WireEnvelope {
  return { ...e, id: e.id.toString(16).padStart(16, '0') };
}

export function fromWire(w: WireEnvelope): Envelope {
  return { ...w, id: BigInt(`0x${w.id}`) as EnvelopeId, messageId: w.messageId as MessageId };
}

/** The most envelopes one message may carry: smtpd's default limit of recipients is 1000. */
const MAX_RECIPIENTS = 1000;

export const queueChannel = channel('queue', {
  'queue.message.create': { request: object({}), response: object({ msgid: uint32 }) },
  // `spare: 'yes'` asks the queue to create the next message along with
  // this commit and to give its id in the answer: smtp's next DATA then
  // needs no `queue.message.create` of its own (see queue-proxy.ts).
  'queue.message.commit': {
    request: object({ msgid: uint32, envelopes: array(envelopeDraft, MAX_RECIPIENTS), spare: optional(oneOf(['yes'])) }),
    response: object({ envelopes: array(wireEnvelope, MAX_RECIPIENTS), spare: optional(uint32) }),
  },
  'queue.message.abort': { request: object({ msgid: uint32 }), response: object({}) },
});
export type QueueRequest = RequestOf<typeof queueChannel['calls']>;
