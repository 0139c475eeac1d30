// Commit three messages to the log backend and delete one envelope, print
// the records of the segment, then tear the last one, as a crash in the
// middle of its write would, and start again.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Envelope, type EnvelopeId, formatEnvelopeId, formatMessageId, type MessageId, messageIdOf, openQueueBackend,
  type QueueBackend,
} from '@saf/impl/queue';
import {
  COMMIT, commitHeadLength, decodeCommitHead, decodeDelete, decodeHeader, decodeUpdate, DELETE, HEADER_BYTES, recordCrc, UPDATE,
} from '../../../impl/src/queue/log-format.ts';

const dir = await mkdtemp(join(tmpdir(), 'queue-as-a-log-'));
const spool = join(dir, 'spool');
const segment = join(spool, 'log', '00000001');
const log = (line: string) => console.log(`  log: ${line}`);
/** What this output calls each message and envelope: their ids are random. */
const names = new Map<MessageId, string>();
const users = new Map<EnvelopeId, string>();

/** What the SMTP engine would commit for each recipient; only the recipient differs here. */
const FROM_ALICE = {
  sender: { user: 'alice', domain: 'example.org' }, dispatcher: 'relay', attempts: 0,
  origin: { clientAddress: '192.0.2.1', helo: 'mail.example.org' }, createdAt: 1_700_000_000, expiresAt: 1_700_345_600,
};

try {
  // 1. Three messages, one of them for two recipients; bob's is delivered.
  let queue = await openQueueBackend('log', { spool, log });
  const [bob] = await commit(queue, 'A', 'Subject: one\r\n\r\nFor bob.\r\n', ['bob']);
  await commit(queue, 'B', 'Subject: two\r\n\r\nFor carol and dave.\r\n', ['carol', 'dave']);
  await queue.deleteEnvelope(bob!.id); // delivered: its DELETE goes out with the next flush
  await commit(queue, 'C', 'Subject: three\r\n\r\nFor erin.\r\n', ['erin']);
  await queue.close();
  console.log(`1. committed A, B and C, deleted bob's envelope; the spool holds: ${(await files()).join(', ')}`);
  await printRecords();

  // 2. Zeros over the last 10 bytes of C, as if the power failed while C was being written.
  const bytes = await readFile(segment);
  const end = recordsEnd(bytes);
  bytes.fill(0, end - 10, end);
  await writeFile(segment, bytes);
  console.log(`2. put zeros back over bytes ${end - 10} to ${end - 1}, the end of C; started again:`);
  queue = await openQueueBackend('log', { spool, log });
  await recover(queue);
  await queue.close();
  console.log(`  the segment has ${(await stat(segment)).size} bytes`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** Receives and commits a message for these users at example.net. */
async function commit(queue: QueueBackend, name: string, content: string, to: string[]): Promise<Envelope[]> {
  const message = await queue.createMessage();
  names.set(message.id, name);
  await message.write(Buffer.from(content));
  const envelopes = await message.commit(to.map(envelope));
  for (const e of envelopes) users.set(e.id, e.recipient.user);
  return envelopes;
}

/** Every record of the segment, decoded with the backend's own functions, its checksum checked. */
async function printRecords(): Promise<void> {
  const bytes = await readFile(segment);
  const end = recordsEnd(bytes);
  console.log('  offset  length  crc  type    what');
  for (let offset = 0; offset < end;) {
    const { length, crc, type } = decodeHeader(bytes.subarray(offset, offset + HEADER_BYTES));
    const payload = bytes.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
    const check = recordCrc(type, [payload]) === crc ? 'ok ' : 'BAD';
    console.log(`  ${String(offset).padStart(6)}  ${String(length).padStart(6)}  ${check}  ${describe(type, payload)}`);
    offset += HEADER_BYTES + length;
  }
  console.log(`  ${String(end).padStart(6)}  then ${bytes.length - end} bytes of zeros, written ahead of the records`);
}

/** Where the records end: the zeros after them are the space the backend wrote ahead. */
function recordsEnd(bytes: Buffer): number {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}

function describe(type: number, payload: Buffer): string {
  switch (type) {
    case COMMIT: {
      const headLength = commitHeadLength(payload);
      const { msgid, envelopes } = decodeCommitHead(payload.subarray(0, headLength))!;
      const to = envelopes.map((e) => users.get(e.id)).join(' and ');
      return `COMMIT  message ${names.get(msgid)} ${formatMessageId(msgid)}: to ${to}, ${payload.length - headLength} bytes of content`;
    }
    case UPDATE:
      return `UPDATE  envelope ${formatEnvelopeId(decodeUpdate(payload)!.id)}`;
    case DELETE: {
      const id = decodeDelete(payload)!;
      return `DELETE  envelope ${formatEnvelopeId(id)}: ${users.get(id)}, message ${names.get(messageIdOf(id))}`;
    }
    default:
      return `type ${type}?`;
  }
}

/** Prints what recover() yields, sorted by recipient. */
async function recover(queue: QueueBackend): Promise<void> {
  const found: Envelope[] = [];
  for await (const e of queue.recover()) found.push(e);
  found.sort((a, b) => a.recipient.user.localeCompare(b.recipient.user));
  console.log('  recover() yields:');
  for (const e of found) console.log(`    ${formatEnvelopeId(e.id)} to ${e.recipient.user}, message ${names.get(e.messageId)}`);
}

/** The files under the spool. */
async function files(): Promise<string[]> {
  const entries = await readdir(spool, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(spool.length + 1)).sort();
}

/** An envelope as the SMTP engine would commit it, for one recipient at example.net. */
function envelope(user: string): Omit<Envelope, 'id' | 'messageId'> {
  const to = { user, domain: 'example.net' };
  return { ...FROM_ALICE, recipient: to, originalRecipient: to };
}
