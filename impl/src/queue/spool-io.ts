/**
 * The three system calls the queue's durability argument rests on: fsync
 * of a file, fsync of a directory, and rename. They go through this small
 * table rather than straight to node:fs so that the tests can watch their
 * order, and the benchmark can measure what they cost by switching the
 * fsyncs off. Every other file operation of the queue uses node:fs
 * directly.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';

export interface SpoolIo {
  /** Makes a file's content and size durable: fsync(2) on its descriptor. */
  syncFile(file: FileHandle, path: string): Promise<void>;
  /** Makes a directory's entries (names created, removed, renamed) durable: fsync(2) on the directory. */
  syncDir(dir: FileHandle, path: string): Promise<void>;
  /** rename(2): atomically gives a file its final name, replacing any file of that name. */
  rename(from: string, to: string): Promise<void>;
}

/** The real thing: what the queue uses. */
export const durableIo: SpoolIo = {
  syncFile: (file) => file.sync(),
  syncDir: (dir) => dir.sync(),
  rename,
};

/**
 * Renames without any fsync, which is what OpenSMTPD 6.8 does. For the
 * benchmark's comparison only: a message "committed" this way can vanish
 * in a power cut after the client was told 250.
 */
export const noSyncIo: SpoolIo = {
  syncFile: async () => {},
  syncDir: async () => {},
  rename,
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
 * each directory open once it has needed it (257 descriptors at most)
 * rather than paying an open and a close around every fsync.
 */
export class DirectoryHandles {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(private readonly io: SpoolIo) {}

  async sync(path: string): Promise<void> {
    let dir = this.handles.get(path);
    if (!dir) {
      dir = open(path, constants.O_RDONLY | constants.O_DIRECTORY);
      dir.catch(() => this.handles.delete(path)); // try again next time
      this.handles.set(path, dir);
    }
    await this.io.syncDir(await dir, path);
  }

  async close(): Promise<void> {
    const dirs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(dirs.map(async (dir) => (await dir).close()));
  }
}
// #endregion fsync-directory

/**
 * Creates a file (it must not exist), writes `data` and fsyncs it. Its name
 * is not durable yet: that takes an fsync of its directory, which the
 * caller does, often once for many files.
 */
export async function writeFileDurably(io: SpoolIo, path: string, data: string | Uint8Array): Promise<void> {
  const file = await open(path, 'wx', 0o600);
  try {
    await file.writeFile(data);
    await io.syncFile(file, path);
  } finally {
    await file.close();
  }
}
