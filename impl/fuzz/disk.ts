/**
 * Fuzzes what the daemon reads from disk at start-up: envelope files,
 * the fs and log spools whole, table files and makemap's db files. Each
 * case damages a valid file: bytes at random, or, where a checksum would
 * catch that at once, a field of a record with the checksum made right
 * again, so that the reader behind the checksum is reached too.
 *
 *     node --import tsx impl/fuzz/disk.ts [--seed N] [--seconds N] [--case N] [--only envelope|fs|log|table|db] [--show]
 *
 * `--show` prints what the spool backends logged, and why one refused to
 * open, to see that damage is found and said clearly.
 *
 * What must hold: a damaged file is refused with a clear error (a
 * TableError, an `{ error }` for an envelope) or set aside with a log
 * line; nothing throws a TypeError or a RangeError; nothing hangs (see
 * harness.ts); an envelope that is accepted prints and reads back the same.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { openQueueBackend } from '../src/queue/index.ts';
import { encodeEnvelope, parseEnvelope, serializeEnvelope } from '../src/queue/envelope-format.ts';
import { decodeHeader, HEADER_BYTES, isRecordType, record } from '../src/queue/log-format.ts';
import type { Envelope } from '../src/queue/types.ts';
import { TableDb } from '../src/table/db-format.ts';
import { encodeTableDb } from '../src/table/db-writer.ts';
import { parseTableFile } from '../src/table/file-format.ts';
import { openTable } from '../src/table/index.ts';
import { TableError, type TableEntry } from '../src/table/types.ts';
import { fuzzMain } from './harness.ts';
import { template } from '../test/queue/envelope-template.ts';
import { caseRandom, mutateBytes, type Random } from './random.ts';

const { values: flags } = parseArgs({ options: { only: { type: 'string' }, show: { type: 'boolean' } }, strict: false });
const KINDS = ['envelope', 'fs', 'log', 'table', 'db'] as const;
type Kind = (typeof KINDS)[number];
const only = flags.only as Kind | undefined;

/** The spools and files of the cases, made only in the worker that runs them (see harness.ts). */
const WORK = isMainThread ? '' : mkdtempSync(join(tmpdir(), 'saf-fuzz-disk-'));

// ---------------------------------------------------------------- inputs


/** A spool of each on-disk backend with a few messages, envelopes updated and deleted: made once, copied per case. */
async function baseSpool(name: 'fs' | 'log'): Promise<{ spool: string; envelopes: Envelope[] }> {
  const spool = join(WORK, `base-${name}`);
  const backend = await openQueueBackend(name, { spool, log: () => {} });
  const envelopes: Envelope[] = [];
  for (let m = 0; m < 4; m++) {
    const message = await backend.createMessage();
    await message.write(Buffer.from(`Subject: ${m}\r\n\r\n${'body\r\n'.repeat(m * 3)}`));
    const committed = await message.commit([template('bob'), template('carol', { dsn: { notify: ['FAILURE'], envid: 'x' } })]);
    envelopes.push(...committed);
  }
  await backend.updateEnvelope({ ...envelopes[0]!, attempts: 2, lastTryAt: 1_700_000_100, lastError: '421 try later', delivery: { user: 'bob', kind: 'mailbox' } });
  await backend.deleteEnvelope(envelopes[3]!.id);
  await backend.close();
  return { spool, envelopes };
}

const bases = isMainThread ? undefined! : { fs: await baseSpool('fs'), log: await baseSpool('log') };

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** A JSON text with one value changed: another type, a bound, a control character, a key removed or added. */
function mutateJson(r: Random, text: string): string {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const paths: { obj: Record<string, unknown>; key: string }[] = [];
  const walk = (o: Record<string, unknown>) => {
    for (const key of Object.keys(o)) {
      paths.push({ obj: o, key });
      const v = o[key];
      if (v && typeof v === 'object') walk(v as Record<string, unknown>);
    }
  };
  walk(raw);
  for (let k = r.range(1, 3); k > 0; k--) {
    const { obj, key } = r.pick(paths);
    switch (r.int(4)) {
      case 0: delete obj[key]; break;
      case 1: obj[`${key}x`] = obj[key]; break;
      default: obj[key] = r.pick<unknown>([
        null, 0, -1, 1.5, 2 ** 53, 1e308, '', 'a\nb', 'a\u0000b', '\u202e', 'x'.repeat(70000), [], {}, true,
        '0000000000000000', 'ffffffffffffffff', { user: 'a', domain: 'b' }, ['FAILURE', 'NEVER'], ['bogus'],
      ]);
    }
  }
  return `${JSON.stringify(raw)}\n`;
}

// ---------------------------------------------------------------- oracles

/** A throw that is not a clear refusal. */
function unexpected(err: unknown, allowed: (err: unknown) => boolean): string | undefined {
  if (allowed(err)) return undefined;
  return `threw ${err instanceof Error ? err.stack : String(err)}`;
}

// ---------------------------------------------------------------- the cases

function envelopeCase(r: Random): string[] {
  const e = r.pick(bases.fs.envelopes);
  const good = encodeEnvelope(e);
  const text = r.chance(0.7) ? mutateJson(r, good) : mutateBytes(r, Buffer.from(good)).toString('utf8');
  let parsed;
  try {
    parsed = parseEnvelope(text);
  } catch (err) {
    return [`parseEnvelope threw: ${err instanceof Error ? err.stack : String(err)}`, `input: ${JSON.stringify(text.slice(0, 2000))}`];
  }
  if ('error' in parsed) {
    return typeof parsed.error === 'string' && parsed.error !== '' ? [] : [`empty error for ${JSON.stringify(text)}`];
  }
  try {
    const again = parseEnvelope(`${serializeEnvelope(parsed.envelope)}\n`);
    if ('error' in again) return [`accepted, but its own serialization is refused: ${again.error}`, `input: ${JSON.stringify(text.slice(0, 2000))}`];
    if (serializeEnvelope(again.envelope) !== serializeEnvelope(parsed.envelope)) return [`accepted, but does not read back the same`, `input: ${JSON.stringify(text.slice(0, 2000))}`];
  } catch (err) {
    return [`serializing an accepted envelope threw: ${err instanceof Error ? err.stack : String(err)}`, `input: ${JSON.stringify(text.slice(0, 2000))}`];
  }
  return [];
}

/** Damages one record of a log segment and makes its checksum right again. */
function damageLogRecord(r: Random, bytes: Buffer): Buffer {
  const records: { at: number; type: number; length: number }[] = [];
  for (let at = 0; at + HEADER_BYTES <= bytes.length;) {
    const h = decodeHeader(bytes.subarray(at, at + HEADER_BYTES));
    if (!isRecordType(h.type) || at + HEADER_BYTES + h.length > bytes.length) break;
    records.push({ at, type: h.type, length: h.length });
    at += HEADER_BYTES + h.length;
  }
  if (records.length === 0) return mutateBytes(r, bytes);
  const rec = r.pick(records);
  let payload: Buffer = Buffer.from(bytes.subarray(rec.at + HEADER_BYTES, rec.at + HEADER_BYTES + rec.length));
  if (r.chance(0.5) && payload.length >= 8) {
    // A number field: an id, a count, a length.
    const at = r.pick([0, 4, 8, 12, 16, 20].filter((o) => o + 4 <= payload.length));
    payload.writeUInt32LE(r.pick([0, 1, 7, 8, 0xffffffff, 0x7fffffff, payload.length, payload.length + 1, payload.readUInt32LE(at) + r.range(-3, 3) >>> 0]), at);
  } else {
    payload = mutateBytes(r, payload);
  }
  const type = r.chance(0.9) ? rec.type : r.pick([1, 2, 3]);
  const rewritten = Buffer.concat(record(type as 1 | 2 | 3, [payload]));
  return Buffer.concat([bytes.subarray(0, rec.at), rewritten, bytes.subarray(rec.at + HEADER_BYTES + rec.length)]);
}

async function spoolCase(r: Random, n: number, name: 'fs' | 'log'): Promise<string[]> {
  const spool = join(WORK, `case-${n}`);
  cpSync(bases[name].spool, spool, { recursive: true });
  try {
    const files = filesUnder(spool).filter((f) => statSync(f).size > 0 || r.chance(0.2));
    for (let k = r.chance(0.2) ? 2 : 1; k > 0; k--) {
      const file = r.pick(files);
      const bytes = readFileSync(file);
      let damaged: Buffer;
      if (name === 'log' && /\/log\/[0-9a-f]{8}$/.test(file) && r.chance(0.7)) damaged = damageLogRecord(r, bytes);
      else if (name === 'fs' && file.includes('/envelopes/') && r.chance(0.6)) damaged = Buffer.from(mutateJson(r, bytes.toString('utf8')));
      else damaged = mutateBytes(r, bytes);
      writeFileSync(file, damaged);
    }
    const logs: string[] = [];
    const problems: string[] = [];
    let backend;
    try {
      backend = await openQueueBackend(name, { spool, log: (l) => logs.push(l) });
    } catch (err) {
      // Refusing to start is acceptable with a message that says what is wrong: --show lists them for review.
      if (flags.show) console.log(`case ${n}: open refused: ${String(err)}`);
      return err instanceof TypeError || err instanceof RangeError ? [`open threw: ${err.stack}`] : [];
    }
    try {
      for await (const e of backend.recover()) {
        const again = parseEnvelope(`${serializeEnvelope(e)}\n`);
        if ('error' in again) problems.push(`recovered an envelope that does not validate: ${again.error}`);
        const stream = await backend.openMessage(e.messageId);
        for await (const chunk of stream) void chunk;
      }
    } catch (err) {
      const problem = unexpected(err, (e) => !(e instanceof TypeError || e instanceof RangeError));
      if (problem) problems.push(`recover or read: ${problem}`);
      else problems.push(`recover or read threw (review): ${String(err)}`);
    } finally {
      await backend.close().catch((err: unknown) => problems.push(`close threw: ${String(err)}`));
    }
    if (flags.show) for (const line of logs) console.log(`case ${n}: ${line}`);
    if (problems.length > 0) problems.push(`logs: ${JSON.stringify(logs)}`);
    return problems;
  } finally {
    rmSync(spool, { recursive: true, force: true });
  }
}

const TABLE_TEXTS = [
  '# aliases\nroot: alice\npostmaster: root, bob@example.org\nlist: "|/usr/bin/true", /var/mail/list\n',
  'example.org\nexample.net\n*.example.com\n',
  '# @list\n::1\n192.0.2.0/24\n',
  'bob@example.org  bob\n@example.net \\\n  catchall\n',
  'key value with spaces\n"quoted key" v\n',
];

function tableCase(r: Random): string[] {
  const text = mutateBytes(r, Buffer.from(r.pick(TABLE_TEXTS))).toString('utf8');
  try {
    const parsed = parseTableFile(text, 'fuzz-table', r.pick([undefined, 'list', 'mapping'] as const));
    const table = openTable('t', { backend: 'static', entries: parsed.entries, file: 'fuzz-table' });
    for (const service of ['alias', 'domain', 'mailaddr', 'netaddr', 'credentials', 'source', 'userinfo'] as const) {
      for (const key of ['root', 'example.org', '::1', 'bob@example.org', 'x']) {
        try {
          if (table.provides(service)) table.lookup(service, key);
        } catch (err) {
          if (!(err instanceof TableError)) return [`lookup ${service} ${key} threw ${err instanceof Error ? err.stack : String(err)}`, `input: ${JSON.stringify(text)}`];
        }
      }
    }
  } catch (err) {
    if (!(err instanceof TableError)) return [`threw ${err instanceof Error ? err.stack : String(err)}`, `input: ${JSON.stringify(text)}`];
  }
  return [];
}

const DB_ENTRIES: TableEntry[] = [
  { key: 'root', value: 'alice' }, { key: 'bob@example.org', value: 'bob' }, { key: 'example.org', value: 'x' },
  ...Array.from({ length: 20 }, (_, i) => ({ key: `user${i}`, value: `value ${i}` })),
];

function dbCase(r: Random, n: number): string[] {
  const kind = r.pick(['mapping', 'list', 'aliases'] as const);
  const good = encodeTableDb(kind, DB_ENTRIES);
  let bytes: Buffer;
  if (r.chance(0.6)) {
    // A number field: a header field, a bucket, a slot, a record's lengths.
    bytes = Buffer.from(good);
    for (let k = r.range(1, 2); k > 0; k--) {
      const at = r.chance(0.3) ? r.pick([8, 12, 16]) : r.int(bytes.length - 3);
      bytes.writeUInt32LE(r.pick([0, 1, 8, 24, 0xffffffff, 0x7fffffff, 0x10000000, bytes.length, bytes.length - 1, bytes.length + 1]), at);
    }
  } else {
    bytes = mutateBytes(r, good);
  }
  const path = join(WORK, `db-${n}`);
  writeFileSync(path, bytes);
  const problems: string[] = [];
  const allowed = (err: unknown) => err instanceof TableError;
  try {
    const db = TableDb.open(path);
    try {
      for (const { key } of [...DB_ENTRIES, { key: 'missing' }]) {
        try {
          db.get(key);
        } catch (err) {
          const p = unexpected(err, allowed);
          if (p) problems.push(`get ${key}: ${p}`);
        }
      }
      try {
        for (const entry of db.entries()) void entry;
      } catch (err) {
        const p = unexpected(err, allowed);
        if (p) problems.push(`entries: ${p}`);
      }
    } finally {
      db.close();
    }
  } catch (err) {
    const p = unexpected(err, allowed);
    if (p) problems.push(`open: ${p}`);
  } finally {
    rmSync(path, { force: true });
  }
  if (problems.length > 0) problems.push(`file (base64): ${bytes.toString('base64').slice(0, 3000)}`);
  return problems;
}

async function runCase(seed: number, n: number): Promise<string[]> {
  const r = caseRandom(seed, n);
  const kind: Kind = only ?? r.pick(KINDS);
  switch (kind) {
    case 'envelope': return envelopeCase(r);
    case 'fs': return spoolCase(r, n, 'fs');
    case 'log': return spoolCase(r, n, 'log');
    case 'table': return tableCase(r);
    case 'db': return dbCase(r, n);
  }
}

await fuzzMain(import.meta.url, `disk${only ? ` (${only})` : ''}`, runCase, () => rmSync(WORK, { recursive: true, force: true }));
