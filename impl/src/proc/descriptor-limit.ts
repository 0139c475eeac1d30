/**
 * How many descriptors a process may have open: the soft limit of
 * `ulimit -n` (Node raises it to the hard limit as it starts), read from
 * /proc on Linux; 1024, a common default, where there is no /proc or the
 * limit is `unlimited`. The queue keeps its directory handles to a share
 * of it, and smtp its sessions, so that neither runs out at the worst
 * moment.
 */
import { readFileSync } from 'node:fs';

export function descriptorLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft > 0 ? soft : 1024;
  } catch {
    return 1024;
  }
}
