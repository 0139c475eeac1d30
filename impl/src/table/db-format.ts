/**
 * The on-disk format of `db:` tables, written by makemap and read by the
 * `db` backend.
 *
 * OpenSMTPD stores these in Berkeley DB 1.85 hash files (dbopen(3)). We use
 * a constant database in the manner of D. J. Bernstein's cdb instead, for
 * what a table needs and nothing more:
 *
 *   - it is read-only: smtpd never writes a table, makemap writes a whole
 *     new one, so there are no updates, locks or free lists to get wrong;
 *   - a lookup is a hash, one probe or two in a slot array, and one read of
 *     the record — O(1), with no need to load the file into memory;
 *   - makemap writes it to a temporary file and renames it over the old
 *     one, so a reader sees the old table or the new one, never half of
 *     either, and keeps reading the old one until it notices the change;
 *   - records are stored in the order of the source file, so `makemap -U`
 *     gives the entries back in the order they were written.
 *
 * Layout (all integers unsigned 32-bit little-endian, positions from the
 * start of the file, so a file is at most 4 GiB):
 *
 *   0     8 bytes   magic "SAFCDB1\n"
 *   8     u32       kind: 0 mapping, 1 list, 2 aliases (makemap's -t)
 *   12    u32       number of records
 *   16    u32       end of the records, where the slot arrays begin
 *   20    u32       reserved, 0
 *   24    256 × (u32 position, u32 count)   one slot array per bucket
 *   2072  records:  u32 key length, u32 value length, key, value (UTF-8)
 *   ...   slot arrays: count × (u32 hash, u32 record position), 0 = empty
 *
 * A key is stored lower-cased. Its hash picks a bucket (low 8 bits) and a
 * starting slot (the rest, modulo the count); slots are probed in turn,
 * wrapping, until the key or an empty slot is found. Each array has twice
 * as many slots as keys, so an empty slot is always near.
 */
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { TableError, type TableEntry, type TableShape } from './types.ts';

export const MAGIC = Buffer.from('SAFCDB1\n', 'latin1');
export const HEADER_SIZE = 24 + 256 * 8;

/** What makemap was told the source is (`-t`): it decides the shape and how values were checked. */
export type DbKind = 'mapping' | 'list' | 'aliases';
export const DB_KINDS: readonly DbKind[] = ['mapping', 'list', 'aliases'];

export function shapeOf(kind: DbKind): TableShape {
  return kind === 'list' ? 'list' : 'mapping';
}

/** cdb's hash: h = h × 33 xor byte, from 5381, kept to 32 bits. */
export function cdbHash(bytes: Uint8Array): number {
  let h = 5381;
  for (const b of bytes) h = (((h << 5) + h) ^ b) >>> 0;
  return h;
}

/** What the header of a db file says. */
export interface DbHeader {
  kind: DbKind;
  count: number;
  recordsEnd: number;
}

/**
 * Reads and checks the header of a db file: `bytes` is at least its first
 * HEADER_SIZE bytes (or the whole file, if shorter), `size` the file's
 * size. Throws TableError for a file that is not one of ours, such as a
 * Berkeley DB file from OpenSMTPD's own makemap, or that is cut short.
 */
export function readDbHeader(bytes: Buffer, size: number, path: string): DbHeader {
  if (size < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new TableError('not a table database made by makemap', path);
  }
  const corrupt = () => new TableError('database is truncated or corrupt; rebuild it with makemap', path);
  if (bytes.length < HEADER_SIZE) throw corrupt();
  const kind = DB_KINDS[bytes.readUInt32LE(8)];
  const recordsEnd = bytes.readUInt32LE(16);
  if (kind === undefined || recordsEnd < HEADER_SIZE || recordsEnd > size) throw corrupt();
  return { kind, count: bytes.readUInt32LE(12), recordsEnd };
}

/** An open db file. Reads go to the file descriptor, at the positions the format gives. */
export class TableDb {
  readonly kind: DbKind;
  readonly count: number;
  private readonly recordsEnd: number;
  private readonly buckets: Buffer;

  private constructor(
    readonly path: string,
    private fd: number,
    /** The file as it was when opened: a later stat that differs means it was replaced. */
    readonly stats: Stats,
  ) {
    const header = this.readUpTo(0, HEADER_SIZE);
    ({ kind: this.kind, count: this.count, recordsEnd: this.recordsEnd } = readDbHeader(header, stats.size, path));
    this.buckets = header.subarray(24);
  }

  static open(path: string): TableDb {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new TableError(`cannot open: ${(err as Error).message}`, path);
    }
    try {
      return new TableDb(path, fd, fstatSync(fd));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  // #region db-lookup
  /**
   * The value stored under `key` (already lower-cased), or undefined. For
   * a list, whose records have no value, the key itself.
   */
  get(key: string): string | undefined {
    const wanted = Buffer.from(key, 'utf8');
    const hash = cdbHash(wanted);
    const bucket = hash & 0xff;
    const slotsAt = this.buckets.readUInt32LE(bucket * 8);
    const slotCount = this.buckets.readUInt32LE(bucket * 8 + 4);
    if (slotCount === 0) return undefined;

    // Probe from the slot the hash points at, wrapping around, until an
    // empty slot says the key is not here.
    const first = (hash >>> 8) % slotCount;
    for (let probe = 0; probe < slotCount; probe++) {
      const slot = (first + probe) % slotCount;
      const entry = this.readAt(slotsAt + slot * 8, 8);
      const recordAt = entry.readUInt32LE(4);
      if (recordAt === 0) return undefined;
      if (entry.readUInt32LE(0) !== hash) continue;

      const sizes = this.readAt(recordAt, 8);
      const keyLength = sizes.readUInt32LE(0);
      const valueLength = sizes.readUInt32LE(4);
      if (keyLength !== wanted.length) continue;
      const record = this.readAt(recordAt + 8, keyLength + valueLength);
      if (!record.subarray(0, keyLength).equals(wanted)) continue;
      return valueLength === 0 ? key : record.toString('utf8', keyLength);
    }
    return undefined;
  }
  // #endregion db-lookup

  /** Every record in file order: one read of the whole record area. */
  *entries(): Generator<TableEntry> {
    const records = this.readAt(HEADER_SIZE, this.recordsEnd - HEADER_SIZE);
    let at = 0;
    while (at < records.length) {
      if (at + 8 > records.length) throw this.corrupt();
      const keyLength = records.readUInt32LE(at);
      const valueLength = records.readUInt32LE(at + 4);
      const keyEnd = at + 8 + keyLength;
      const end = keyEnd + valueLength;
      if (end > records.length) throw this.corrupt();
      const key = records.toString('utf8', at + 8, keyEnd);
      yield this.kind === 'list' ? { key } : { key, value: records.toString('utf8', keyEnd, end) };
      at = end;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Up to `length` bytes from `position`: fewer at the end of the file. */
  private readUpTo(position: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    return buffer.subarray(0, readSync(this.fd, buffer, 0, length, position));
  }

  /**
   * Exactly `length` bytes from `position`. The lengths come from the
   * file: in a damaged one they may say gigabytes, and are checked
   * against its size before a buffer is made for them.
   */
  private readAt(position: number, length: number): Buffer {
    if (position + length > this.stats.size) throw this.corrupt();
    const buffer = Buffer.alloc(length);
    const got = length === 0 ? 0 : readSync(this.fd, buffer, 0, length, position);
    if (got !== length) throw this.corrupt();
    return buffer;
  }

  private corrupt(): TableError {
    return new TableError('database is truncated or corrupt; rebuild it with makemap', this.path);
  }
}
