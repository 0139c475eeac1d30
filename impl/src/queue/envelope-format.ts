/**
 * How an envelope is written to disk and read back.
 *
 * One envelope is one file holding one line of JSON with a version number,
 * then a newline:
 *
 *   {"version":1,"id":"0a1b2c3d4e5f6071","messageId":"0a1b2c3d",...}
 *
 * JSON because every field, including a client's HELO string, round-trips
 * without an escaping scheme of our own; one line so that `cat`, `grep`
 * and `wc -l` work on a spool. Ids are hex strings (JSON numbers cannot
 * hold 64 bits). What comes back from disk is never trusted: it is checked
 * field by field, as OpenSMTPD's envelope_validate does, before anything
 * in the queue acts on it.
 */
import { formatEnvelopeId, formatMessageId, messageIdOf, parseEnvelopeId, parseMessageId } from './ids.ts';
import type { DsnRequest, Envelope, LocalDelivery, MailAddress, Origin } from './types.ts';

/** Bumped whenever a field changes meaning; a file with another version is refused, never guessed at. */
export const ENVELOPE_VERSION = 1;

/** Envelope files are small; anything larger is not one of ours. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;

/** Serializes an envelope: the exact bytes of its file. */
export function serializeEnvelope(e: Envelope): string {
  // Field order is fixed, so that two dumps of one envelope are identical.
  const record = {
    version: ENVELOPE_VERSION,
    id: formatEnvelopeId(e.id),
    messageId: formatMessageId(e.messageId),
    sender: e.sender,
    recipient: e.recipient,
    originalRecipient: e.originalRecipient,
    dispatcher: e.dispatcher,
    origin: e.origin,
    dsn: e.dsn,
    createdAt: e.createdAt,
    expiresAt: e.expiresAt,
    attempts: e.attempts,
    lastTryAt: e.lastTryAt,
    lastError: e.lastError,
    delivery: e.delivery,
    warnings: e.warnings,
  };
  return `${JSON.stringify(record)}\n`;
}

/**
 * Serializes an envelope that is about to be written, after checking that
 * it would pass validation when read back: the queue never writes a file
 * it would refuse to read. Throws, naming the reason, otherwise.
 */
export function encodeEnvelope(e: Envelope, options: ValidateOptions = {}): string {
  return encodeEnvelopeRecord(e, options).text;
}

/**
 * encodeEnvelope, which also returns the envelope as reading that text back
 * gives it: a fresh object that shares nothing with `e`, for the queue's
 * envelope cache.
 */
export function encodeEnvelopeRecord(e: Envelope, options: ValidateOptions = {}): { text: string; envelope: Envelope } {
  const text = serializeEnvelope(e);
  const parsed = parseEnvelope(text, options);
  if ('error' in parsed) throw new Error(`queue: envelope ${formatEnvelopeId(e.id)} is invalid: ${parsed.error}`);
  return { text, envelope: parsed.envelope };
}

/** The result of reading an envelope file: the envelope, or why it is refused. */
export type ParsedEnvelope = { envelope: Envelope } | { error: string };

/** What validation may also check, when the caller knows it. */
export interface ValidateOptions {
  /** The action names of smtpd.conf; an envelope naming another is refused ("unknown dispatcher"). */
  dispatchers?: ReadonlySet<string>;
}

/** Reads an envelope file's text; never throws. */
export function parseEnvelope(text: string, options: ValidateOptions = {}): ParsedEnvelope {
  // A file cut short by a crash (it cannot be, once renamed into place,
  // but a disk can lie) almost never ends with the newline we write last.
  if (!text.endsWith('\n')) return { error: 'truncated (no final newline)' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'not valid JSON' };
  }
  return validateEnvelope(raw, options);
}

// #region envelope-validate
/**
 * Checks a record read from disk, field by field, and builds the Envelope
 * from it. Each failure has a short reason for the log line. What this
 * refuses: another version; ids that are malformed, 0, or disagree (an
 * envelope's id must carry its message id); missing or mistyped fields;
 * fields we do not know (a newer writer, or garbage); control characters
 * in addresses, HELO and error text (they would end up in headers and log
 * lines); times that run backwards; a dispatcher smtpd.conf does not have.
 */
export function validateEnvelope(raw: unknown, options: ValidateOptions = {}): ParsedEnvelope {
  if (!isRecord(raw)) return { error: 'not an object' };
  if (raw['version'] !== ENVELOPE_VERSION) return { error: `version mismatch (${shown(String(raw['version']))})` };
  for (const key of Object.keys(raw)) {
    if (!FIELDS.has(key)) return { error: `unknown field ${shown(key)}` };
  }

  const id = typeof raw['id'] === 'string' ? parseEnvelopeId(raw['id']) : undefined;
  if (id === undefined) return { error: 'invalid id' };
  const messageId = typeof raw['messageId'] === 'string' ? parseMessageId(raw['messageId']) : undefined;
  if (messageId === undefined) return { error: 'invalid message id' };
  if (messageIdOf(id) !== messageId) return { error: 'id does not belong to message id' };

  const sender = raw['sender'] === null ? null : address(raw['sender']);
  if (sender === undefined) return { error: 'invalid sender' };
  const recipient = address(raw['recipient']);
  if (!recipient || recipient.user === '') return { error: 'invalid recipient' };
  const originalRecipient = address(raw['originalRecipient']);
  if (!originalRecipient) return { error: 'invalid original recipient' };

  const dispatcher = raw['dispatcher'];
  if (!isText(dispatcher) || dispatcher === '') return { error: 'invalid dispatcher' };
  if (options.dispatchers && !options.dispatchers.has(dispatcher)) return { error: unknownDispatcher(dispatcher) };

  const origin = originOf(raw['origin']);
  if (typeof origin === 'string') return { error: origin };
  const dsn = raw['dsn'] === undefined ? undefined : dsnOf(raw['dsn']);
  if (dsn === null) return { error: 'invalid dsn' };

  const { createdAt, expiresAt, attempts, lastTryAt, lastError } = raw;
  if (!isCount(createdAt) || !isCount(expiresAt) || expiresAt < createdAt) return { error: 'invalid times' };
  if (!isCount(attempts)) return { error: 'invalid attempts' };
  if (lastTryAt !== undefined && !isCount(lastTryAt)) return { error: 'invalid last try' };
  if (lastError !== undefined && !isText(lastError, 1000)) return { error: 'invalid last error' };
  const delivery = raw['delivery'] === undefined ? undefined : deliveryOf(raw['delivery']);
  if (delivery === null) return { error: 'invalid delivery' };
  const { warnings } = raw;
  if (warnings !== undefined && !isCount(warnings)) return { error: 'invalid warnings' };

  const envelope: Envelope = {
    id, messageId, sender, recipient, originalRecipient, dispatcher, origin, createdAt, expiresAt, attempts,
  };
  if (dsn) envelope.dsn = dsn;
  if (lastTryAt !== undefined) envelope.lastTryAt = lastTryAt;
  if (lastError !== undefined) envelope.lastError = lastError;
  if (delivery) envelope.delivery = delivery;
  if (warnings !== undefined) envelope.warnings = warnings;
  return { envelope };
}
// #endregion envelope-validate

const FIELDS = new Set([
  'version', 'id', 'messageId', 'sender', 'recipient', 'originalRecipient', 'dispatcher', 'origin', 'dsn',
  'createdAt', 'expiresAt', 'attempts', 'lastTryAt', 'lastError', 'delivery', 'warnings',
]);

const DELIVERY_KINDS = new Set(['mailbox', 'file', 'command']);
const SOURCE_KINDS = new Set(['alias', 'virtual', 'forward']);

/**
 * A local delivery, or null if malformed. Checked like the rest, but not
 * trusted for more than its shape: whether a `command` may run is decided
 * again, from smtpd.conf, by the process that would run it.
 */
function deliveryOf(v: unknown): LocalDelivery | null {
  if (!isRecord(v)) return null;
  const { user, kind, target, source, subaddress } = v;
  for (const key of Object.keys(v)) {
    if (!['user', 'kind', 'target', 'source', 'subaddress'].includes(key)) return null;
  }
  if (!isText(user) || user === '' || typeof kind !== 'string' || !DELIVERY_KINDS.has(kind)) return null;
  const delivery: LocalDelivery = { user, kind: kind as LocalDelivery['kind'] };
  if (kind !== 'mailbox') {
    if (!isText(target, DELIVERY_LIMITS.target) || target === '') return null;
    delivery.target = target;
  } else if (target !== undefined) {
    return null;
  }
  if (source !== undefined) {
    if (!isRecord(source) || typeof source['kind'] !== 'string' || !SOURCE_KINDS.has(source['kind'])) return null;
    if (!isText(source['where'], DELIVERY_LIMITS.where)) return null;
    delivery.source = { kind: source['kind'] as 'alias' | 'virtual' | 'forward', where: source['where'] };
  }
  if (subaddress !== undefined) {
    if (!isText(subaddress)) return null;
    delivery.subaddress = subaddress;
  }
  return delivery;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The reason for an envelope whose action smtpd.conf no longer has (an
 * action renamed or removed before a restart): it names the action, so
 * that the administrator knows what to put back before moving the files
 * from corrupt/ to the queue again.
 */
function unknownDispatcher(dispatcher: string): string {
  return `unknown dispatcher: action "${shown(dispatcher)}" is not in smtpd.conf`;
}

/**
 * Text from a damaged file as a log line may quote it: 40 characters at
 * most, anything but printable ASCII escaped, so that a long or crafted
 * field name cannot flood the log or start a line of its own.
 */
function shown(text: string): string {
  const cut = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return cut.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The longest ENVID and ORCPT an envelope holds (RFC 3461 4.4 and 4.2), after xtext decoding. */
export const DSN_LIMITS = { envid: 100, orcpt: 500 } as const;

/**
 * The longest file or command, and origin (`table aliases, key x`), a local
 * delivery holds. Expansion checks a target against them at RCPT TO, so
 * that a table line the queue would refuse is refused there, for one
 * recipient, not at the commit, for the whole message.
 */
export const DELIVERY_LIMITS = { target: 4096, where: 1000 } as const;

/**
 * A string of at most `max` characters, without control characters (NUL,
 * CR, LF...): what an envelope's text fields must be. The SMTP engine
 * checks what clients send with the same rule, so that a value the queue
 * would refuse is refused at the command, not at commit.
 */
export function isText(v: unknown, max = 255): v is string {
  return typeof v === 'string' && v.length <= max && !/[\x00-\x1f\x7f]/.test(v);
}

/** A non-negative integer (seconds, attempts). */
function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function address(v: unknown): MailAddress | undefined {
  if (!isRecord(v) || Object.keys(v).length !== 2) return undefined;
  const { user, domain } = v;
  return isText(user) && isText(domain) ? { user, domain } : undefined;
}

/** The origin, or the reason it is refused. */
function originOf(v: unknown): Origin | string {
  if (!isRecord(v)) return 'invalid origin';
  const { tag, clientAddress, clientName, helo, authUser, tls } = v;
  if (!isText(clientAddress) || clientAddress === '') return 'invalid client address';
  if (!isText(helo)) return 'invalid helo';
  if (helo === '') return 'empty helo';
  const origin: Origin = { clientAddress, helo };
  for (const [key, value] of [['tag', tag], ['clientName', clientName], ['authUser', authUser]] as const) {
    if (value === undefined) continue;
    if (!isText(value)) return `invalid ${key}`;
    origin[key] = value;
  }
  if (tls !== undefined) {
    if (!isRecord(tls) || !isText(tls['protocol']) || !isText(tls['cipher']) || !isCount(tls['bits'])) {
      return 'invalid tls';
    }
    origin.tls = { protocol: tls['protocol'], cipher: tls['cipher'], bits: tls['bits'] };
  }
  return origin;
}

const NOTIFY = new Set(['SUCCESS', 'FAILURE', 'DELAY', 'NEVER']);

/** The DSN request, or null if it is malformed. */
function dsnOf(v: unknown): DsnRequest | null {
  if (!isRecord(v)) return null;
  const { notify, orcpt, ret, envid } = v;
  const dsn: DsnRequest = {};
  if (notify !== undefined) {
    if (!Array.isArray(notify) || !notify.every((n) => typeof n === 'string' && NOTIFY.has(n))) return null;
    dsn.notify = notify as DsnRequest['notify'];
  }
  if (orcpt !== undefined) {
    if (!isText(orcpt, DSN_LIMITS.orcpt)) return null;
    dsn.orcpt = orcpt;
  }
  if (ret !== undefined) {
    if (ret !== 'FULL' && ret !== 'HDRS') return null;
    dsn.ret = ret;
  }
  if (envid !== undefined) {
    if (!isText(envid, DSN_LIMITS.envid)) return null;
    dsn.envid = envid;
  }
  return dsn;
}
