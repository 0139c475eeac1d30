/**
 * The three system calls the queue's durability argument rests on: fsync
 * of a file, fsync of a directory, and rename. They go through this small
 * table rather than straight to node:fs so that the tests can watch their
 * order, and the benchmark can measure what they cost by switching the
 * fsyncs off.
 *
 * Which calls block. Node runs an asynchronous file system call on a
 * thread of libuv's pool and posts its result back to the event loop: two
 * thread switches, which cost 30 to 40 microseconds of CPU per call on
 * this project's 2-core machine, where the call itself (an open, a write
 * of a few KiB to the page cache, a rename, an unlink) costs 3 to 10. So
 * the queue, like OpenSMTPD's queue process, makes those calls blocking,
 * and sends only the fsyncs, which wait for the disk, to the pool, where
 * many of them wait side by side. A message's content larger than the
 * write buffer is the one other exception (fs-incoming.ts).
 */
import { closeSync, constants, fstatSync, fsync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { descriptorLimit } from '../proc/descriptor-limit.ts';

/** What can be fsync'd: an open file or directory. */
export interface Syncable {
  sync(): Promise<void>;
}

/** A descriptor opened with the blocking calls, fsync'd on the pool. */
export class Descriptor implements Syncable {
  constructor(readonly fd: number) {}

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface SpoolIo {
  /** Makes a file's content and size durable: fsync(2) on its descriptor. */
  syncFile(file: Syncable, path: string): Promise<void>;
  /** Makes a directory's entries (names created, removed, renamed) durable: fsync(2) on the directory. */
  syncDir(dir: Syncable, path: string): Promise<void>;
  /** rename(2): atomically gives a file its final name, replacing any file of that name. */
  rename(from: string, to: string): Promise<void>;
}

/** rename(2), blocking (see above), with a failure as a rejected promise. */
async function renameNow(from: string, to: string): Promise<void> {
  renameSync(from, to);
}

/** The real thing: what the queue uses. */
export const durableIo: SpoolIo = {
  syncFile: (file) => file.sync(),
  syncDir: (dir) => dir.sync(),
  rename: renameNow,
};

/**
 * Renames without any fsync, which is what OpenSMTPD 6.8 does. For the
 * benchmark's comparison only: a message "committed" this way can vanish
 * in a power cut after the client was told 250. Each skipped fsync still
 * ends on a later turn of the event loop, as a real one does: with every
 * other call blocking, a writer that commits in a loop would otherwise
 * never let the event loop run (its timers, its sockets).
 */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
export const noSyncIo: SpoolIo = {
  syncFile: nextTurn,
  syncDir: nextTurn,
  rename: renameNow,
};

// #region fsync-directory
/**
 * fsync of a file makes its bytes durable, but not its name: the name is
 * an entry in a directory, another inode with its own unwritten changes.
 * Until the directory itself is fsync'd, a power cut can leave a fully
 * written file that no directory points to, or undo a rename. Node has no
 * call for it, so we open the directory read-only and fsync that
 * descriptor, as C programs do.
 *
 * The queue fsyncs its buckets and incoming/ for every commit, so it keeps
 * the directories it needed last open (`maxOpen`: 64, or an eighth of the
 * descriptors the process may open if that is less) rather than paying
 * an open and a close around every fsync. Not all of them: with 256
 * buckets, that would be 257 descriptors held for good, and a daemon
 * allowed few (`ulimit -n`) would run out for its messages and refuse
 * mail until restarted, whatever the load. And callers
 * share fsyncs: an fsync of a directory makes durable every change made
 * to it before the fsync started, so a caller who arrives while one is
 * running waits for the next one, together with everyone else who
 * arrives meanwhile, and a caller who arrives when none is running starts
 * one at once. Under load, the commits whose files share a bucket share
 * its fsyncs.
 */
export class DirectoryHandles {
  /** Open directories, the most recently used last (a Map keeps insertion order). */
  private readonly handles = new Map<string, Descriptor>();
  /** Per directory: whether an fsync is running, and the callers waiting for the next one. */
  private readonly syncing = new Map<string, { next: Waiter[] }>();

  constructor(
    private readonly io: SpoolIo,
    private readonly maxOpen = Math.max(4, Math.min(64, Math.floor(descriptorLimit() / 8))),
  ) {}

  /** How many directories are open now: for the tests. */
  get open(): number {
    return this.handles.size;
  }

  sync(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const running = this.syncing.get(path);
      if (running) running.next.push({ resolve, reject });
      else void this.run(path, [{ resolve, reject }]);
    });
  }

  /** fsyncs `path` for `waiters`, then again for those who came meanwhile, until nobody waits. */
  private async run(path: string, waiters: Waiter[]): Promise<void> {
    const state = { next: [] as Waiter[] };
    this.syncing.set(path, state);
    while (waiters.length > 0) {
      try {
        await this.io.syncDir(this.handle(path), path);
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
      waiters = state.next;
      state.next = [];
    }
    this.syncing.delete(path);
  }

  private handle(path: string): Descriptor {
    let dir = this.handles.get(path);
    if (dir) {
      this.handles.delete(path); // to the end: used last
    } else {
      this.closeIdle(this.maxOpen - 1);
      dir = new Descriptor(openSync(path, constants.O_RDONLY | constants.O_DIRECTORY)); // a failure: try again next time
    }
    this.handles.set(path, dir);
    this.closeIdle(this.maxOpen); // those whose fsyncs kept them open past the limit
    return dir;
  }

  /** Closes the least recently used directories no fsync is running on, until at most `keep` are open. */
  private closeIdle(keep: number): void {
    for (const [path, dir] of this.handles) {
      if (this.handles.size <= keep) return;
      if (this.syncing.has(path)) continue;
      this.handles.delete(path);
      dir.close();
    }
  }

  async close(): Promise<void> {
    const dirs = [...this.handles.values()];
    this.handles.clear();
    for (const dir of dirs) dir.close();
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}
// #endregion fsync-directory

/**
 * Creates a file (it must not exist), writes `data` and fsyncs it. Its name
 * is not durable yet: that takes an fsync of its directory, which the
 * caller does, often once for many files.
 */
export async function writeFileDurably(io: SpoolIo, path: string, data: string | Uint8Array): Promise<FileIdentity> {
  const file = new Descriptor(openSync(path, 'wx', 0o600));
  try {
    writeAllSync(file.fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    const identity = identityOf(fstatSync(file.fd));
    await io.syncFile(file, path);
    return identity;
  } finally {
    file.close();
  }
}

/** Writes all of `data` at the file's position, looping over short writes. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done);
}

/**
 * What tells one version of a file from another, for the queue's caches:
 * the inode, the size and the modification time. A file replaced (an
 * update renames a new one over it), rewritten or removed no longer
 * matches what the queue remembers of it.
 */
export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

export function identityOf(st: { ino: number; size: number; mtimeMs: number }): FileIdentity {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/** Whether `path` is still the file `known` describes; false when it is gone or changed. */
export function stillSame(path: string, known: FileIdentity): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.ino === known.ino && st.size === known.size && st.mtimeMs === known.mtimeMs;
}
