import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach } from 'vitest';
import type { LocalMethod } from '../../src/config/index.ts';
import type { DeliveryRequest, UserRecord } from '../../src/delivery/types.ts';
import type { Envelope, LocalDelivery } from '../../src/queue/types.ts';
import { testEnvelope } from '../envelopes.ts';

/** A fresh directory, removed by the returned function. */
export function tempDir(prefix = 'saf-delivery-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A fresh directory for each test that asks, removed after the test:
 * `const freshDir = tempDirPerTest();` in a describe block, then
 * `const dir = freshDir();` in a test.
 */
export function tempDirPerTest(prefix?: string): () => string {
  let cleanup = () => {};
  afterEach(() => {
    cleanup();
    cleanup = () => {};
  });
  return () => {
    const t = tempDir(prefix);
    cleanup = t.cleanup;
    return t.dir;
  };
}

/**
 * The message as the queue hands it over, in small chunks so that line
 * ends and `From ` lines fall across chunk boundaries.
 */
export function content(message: string | Buffer, chunkSize = 7): Readable {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

/** CRLF -> LF, what every file agent writes; bytes stay bytes (latin1 maps each byte to one character and back). */
export function unix(message: string | Buffer): Buffer {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}

export function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return testEnvelope({
    originalRecipient: { user: 'bob+news', domain: 'example.net' },
    origin: { clientAddress: '192.0.2.1', helo: 'mail.example.org' },
    ...overrides,
  });
}

export function user(home: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return { name: 'bob', uid: 1000, gid: 1000, home, ...overrides };
}

export function request(method: LocalMethod, home: string, overrides: Partial<DeliveryRequest> & { delivery?: LocalDelivery } = {}): DeliveryRequest {
  const { delivery, ...rest } = overrides;
  return {
    envelope: envelope(delivery ? { delivery } : { delivery: { user: 'bob', kind: 'mailbox' } }),
    action: 'local',
    method,
    user: user(home),
    hostname: 'mx.example.net',
    ...rest,
  };
}

export interface PyMessage {
  from?: string;
  name?: string;
  bytes: Buffer;
}

function python(script: string, arg: string): unknown {
  return JSON.parse(execFileSync('python3', ['-c', script, arg], { encoding: 'utf8' }));
}

const MBOX_READER = `
import base64, json, mailbox, sys
mb = mailbox.mbox(sys.argv[1], create=False)
print(json.dumps([{'from': mb.get_message(k).get_from(), 'bytes': base64.b64encode(mb.get_bytes(k)).decode()} for k in sorted(mb.keys())]))
`;

/** What Python's mailbox.mbox reads from a file: each message's From_ line (without `From `) and its bytes. */
export function readMboxWithPython(path: string): PyMessage[] {
  return (python(MBOX_READER, path) as { from: string; bytes: string }[]).map((m) => ({ from: m.from, bytes: Buffer.from(m.bytes, 'base64') }));
}

const MAILDIR_READER = `
import base64, json, mailbox, sys
md = mailbox.Maildir(sys.argv[1], factory=None, create=False)
def dump(box):
    return [{'name': k, 'bytes': base64.b64encode(box.get_bytes(k)).decode()} for k in sorted(box.keys())]
print(json.dumps({'inbox': dump(md), 'folders': {f: dump(md.get_folder(f)) for f in md.list_folders()}}))
`;

/** What Python's mailbox.Maildir reads: the inbox and each Maildir++ folder. */
export function readMaildirWithPython(path: string): { inbox: PyMessage[]; folders: Record<string, PyMessage[]> } {
  const raw = python(MAILDIR_READER, path) as { inbox: { name: string; bytes: string }[]; folders: Record<string, { name: string; bytes: string }[]> };
  const conv = (list: { name: string; bytes: string }[]) => list.map((m) => ({ name: m.name, bytes: Buffer.from(m.bytes, 'base64') }));
  return { inbox: conv(raw.inbox), folders: Object.fromEntries(Object.entries(raw.folders).map(([k, v]) => [k, conv(v)])) };
}
