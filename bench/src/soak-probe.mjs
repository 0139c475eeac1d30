/**
 * Loaded into every process of the daemon under soak.ts, through
 * NODE_OPTIONS=--import: every few seconds it writes what only the process
 * itself can see (V8 heap, the handles and requests that keep its event loop
 * alive, timers among them) to SOAK_PROBE_DIR/<pid>.json. When the file
 * SOAK_PROBE_DIR/gc is newer than the last one it saw, it first runs a full
 * garbage collection, so that heapUsed counts what is still referenced, not
 * what is merely uncollected.
 *
 * Delivery agents are started with an environment of their own (PATH only),
 * so in the parent the probe wraps child_process.spawn to hand them the same
 * two variables. This file changes nothing else, and its timer is unref'd:
 * it never keeps a process alive.
 */
import childProcess from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dir = process.env.SOAK_PROBE_DIR;
if (dir) {
  const forwarded = { NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', SOAK_PROBE_DIR: dir };
  const spawn = childProcess.spawn;
  childProcess.spawn = function (file, args, options) {
    if (file === process.execPath && options && typeof options === 'object' && options.env) {
      options = { ...options, env: { ...options.env, ...forwarded } };
    }
    return spawn.call(this, file, args, options);
  };
  syncBuiltinESMExports();

  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const gcFile = join(dir, 'gc');
  let gcSeen = 0;
  const sample = () => {
    let gcd = false;
    try {
      const m = statSync(gcFile).mtimeMs;
      if (m > gcSeen) {
        gcSeen = m;
        gc();
        gcd = true;
      }
    } catch {
      // no request yet
    }
    const resources = {};
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
    const text = JSON.stringify({ pid: process.pid, title: process.title, at: Date.now(), gcSeen, gcd, memory: process.memoryUsage(), resources });
    try {
      writeFileSync(join(dir, `${process.pid}.json`), text);
    } catch {
      try {
        mkdirSync(dir, { recursive: true });
      } catch {
        // not ours to make
      }
    }
  };
  setInterval(sample, Number(process.env.SOAK_PROBE_MS ?? 2000)).unref();
}
