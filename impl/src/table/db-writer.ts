/**
 * Writing `db:` tables: encoding entries in the format of db-format.ts, and
 * putting the file in place so that no reader ever sees half of it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { cdbHash, HEADER_SIZE, MAGIC, DB_KINDS, type DbKind } from './db-format.ts';
import { asciiLowercase } from './lowercase.ts';
import { TableError, type TableEntry } from './types.ts';

/**
 * Encodes entries as a db file. Keys are lower-cased, as every lookup key
 * is; the caller has checked that no two keys are equal.
 */
export function encodeTableDb(kind: DbKind, entries: readonly TableEntry[]): Buffer {
  const chunks: Buffer[] = [Buffer.alloc(HEADER_SIZE)];
  let position = HEADER_SIZE;
  const buckets: { hash: number; at: number }[][] = Array.from({ length: 256 }, () => []);

  for (const entry of entries) {
    const key = Buffer.from(asciiLowercase(entry.key), 'utf8');
    const value = Buffer.from(kind === 'list' ? '' : (entry.value ?? ''), 'utf8');
    const sizes = Buffer.alloc(8);
    sizes.writeUInt32LE(key.length, 0);
    sizes.writeUInt32LE(value.length, 4);
    chunks.push(sizes, key, value);
    const hash = cdbHash(key);
    buckets[hash & 0xff]?.push({ hash, at: position });
    position += 8 + key.length + value.length;
  }
  const recordsEnd = position;

  // One slot array per bucket, twice as long as its keys, each key placed
  // at the first free slot from the one its hash points at.
  const header = chunks[0] as Buffer;
  buckets.forEach((keys, bucket) => {
    const count = keys.length * 2;
    const slots = Buffer.alloc(count * 8);
    for (const { hash, at } of keys) {
      let slot = (hash >>> 8) % count;
      while (slots.readUInt32LE(slot * 8 + 4) !== 0) slot = (slot + 1) % count;
      slots.writeUInt32LE(hash, slot * 8);
      slots.writeUInt32LE(at, slot * 8 + 4);
    }
    header.writeUInt32LE(position, 24 + bucket * 8);
    header.writeUInt32LE(count, 24 + bucket * 8 + 4);
    chunks.push(slots);
    position += slots.length;
  });

  if (position > 0xffffffff) throw new TableError('table too large for the db format (4 GiB)');
  MAGIC.copy(header, 0);
  header.writeUInt32LE(DB_KINDS.indexOf(kind), 8);
  header.writeUInt32LE(entries.length, 12);
  header.writeUInt32LE(recordsEnd, 16);
  return Buffer.concat(chunks);
}

/** Who may read the new file: makemap gives the db the mode and owner of its source. */
export interface FileAccess {
  mode: number;
  uid?: number;
  gid?: number;
}

// #region atomic-replace
/**
 * Puts `data` at `path` so that anyone opening `path` gets either the old
 * file or the new one, whole, even if the machine stops half-way:
 *
 *   1. write a temporary file in the same directory (rename(2) only
 *      replaces atomically within one file system), created exclusively
 *      so that two makemaps never write the same one;
 *   2. give it its mode and owner before it has a name anyone uses;
 *   3. fsync it, so the data is on disk before the name points at it —
 *      otherwise a crash could leave the new name on an empty file;
 *   4. rename it over `path`: the atomic step;
 *   5. fsync the directory, so the rename itself survives a crash.
 *
 * OpenSMTPD's makemap does 1 to 4; step 5 is ours. On any failure the
 * temporary file is removed and `path` is untouched.
 */
export function replaceFileAtomically(path: string, data: Uint8Array, access: FileAccess): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      fchmodSync(fd, access.mode);
      if (access.uid !== undefined && access.gid !== undefined) fchownSync(fd, access.uid, access.gid);
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  syncDirectory(dir);
}
// #endregion atomic-replace

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
