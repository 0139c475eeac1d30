/**
 * Checking passwords on a thread of their own.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

// #region password-thread
/**
 * crypt(3) hashes are slow on purpose, and ours are computed in
 * JavaScript: on this machine, 9 ms for a `$6$` hash with default
 * rounds, 18 ms for bcrypt at cost 8 and 71 ms at cost 10 (each step of
 * cost doubles it).
 * The lookup process also answers every RCPT TO of every session, on one
 * thread; checked there, each AUTH attempt would stop all of them for as
 * long, and a client trying passwords in a few sessions would stall mail
 * for everyone. So lookup hands each check to this worker thread, one at
 * a time, and goes on answering meanwhile. (OpenSMTPD's lka calls the C
 * library's crypt() where it stands, which is quicker, but stops lka all
 * the same.)
 */
export class PasswordThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (ok: boolean) => void; reject: (err: Error) => void }>();

  /** Is `password` the one `hash` was made from? */
  verify(password: string | Uint8Array, hash: string): Promise<boolean> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref(); // a check under way keeps the process up
      worker.postMessage({ id, password, hash });
    });
  }

  close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    return worker ? worker.terminate().then(() => undefined) : Promise.resolve();
  }

  private start(): Worker {
    const worker = new Worker(BOOT, { eval: true, workerData: { loader: TSX_API, body: BODY } });
    worker.unref();
    worker.on('message', ({ id, ok }: { id: number; ok: boolean }) => {
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      if (this.waiting.size === 0) worker.unref();
      waiter?.resolve(ok);
    });
    // A thread that dies fails the checks it had; the next check starts another.
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.waiting.values()) waiter.reject(err);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the password thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
// #endregion password-thread

/**
 * The thread runs TypeScript, so it registers tsx's loader before it
 * imports its body: a worker thread does not inherit the loader that
 * `--import` gave the process (and in the tests there is none).
 * `require.resolve` finds the package's CommonJS entry; the loader is its
 * ES module twin beside it.
 */
const TSX_API = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
const BODY = new URL('./password-worker.ts', import.meta.url).href;
const BOOT = `
const { workerData } = require('node:worker_threads');
import(workerData.loader).then(({ register }) => { register(); return import(workerData.body); });
`;
