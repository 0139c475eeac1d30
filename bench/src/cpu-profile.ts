/**
 * node --import tsx bench/src/cpu-profile.ts [--top 20] [--window 4000] FILE.cpuprofile...
 *
 * Where one process spends its time, from the V8 CPU profiles that the
 * daemon's children write when it runs with SMTPD_CPU_PROF=DIR (see
 * impl/src/proc/spawn.ts), e.g. under breakdown.ts:
 *
 *   mkdir -m 1777 /tmp/prof
 *   SMTPD_CPU_PROF=/tmp/prof node impl/bin/smtpd.mjs -d -f smtpd.conf ...
 *   node --import tsx bench/src/cpu-profile.ts /tmp/prof/*.cpuprofile
 *
 * (`breakdown.ts --cpu-prof DIR` does all three, naming each process.)
 *
 * A profile covers the process's whole life, and its first seconds are
 * spent loading modules, so only the last `window` milliseconds before
 * its final samples count (the load, not start-up or the warm-up).
 * Prints, per file, the busy and idle time in that window and the
 * functions with the most self time: JavaScript by file and line, and
 * native calls such as `writeBuffer` (a socket write) or `open` by name,
 * with `(garbage collector)` for V8's collections on the main thread.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** The last moments are the daemon shutting down, not the load. */
const TAIL_US = 300_000;

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

function where(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const file = frame.url.replace(/^.*\/impl\/src\//, '').replace(/^.*\/node_modules\//, '');
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

/** The busy and idle time of one profile's last `windowMs`, and its `top` functions by self time, as lines to print. */
export function summarizeProfile(file: string, { top = 20, windowMs = 4000 } = {}): string[] {
  const WINDOW_US = windowMs * 1000;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push((t += d));
  const end = (times.at(-1) ?? 0) - TAIL_US;
  const start = end - WINDOW_US;
  const self = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i]!;
    if (at < start || at > end) continue;
    const spent = profile.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next one
    const frame = nodes.get(profile.samples[i]!)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += spent;
      continue;
    }
    busy += spent;
    const key = where(frame);
    self.set(key, (self.get(key) ?? 0) + spent);
  }
  const lines = [`${basename(file)}: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms in the last ${windowMs / 1000} s`];
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(5)} ms  ${key}`);
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values: args, positionals: files } = parseArgs({
    options: { top: { type: 'string' }, window: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (files.length === 0) {
    console.error('usage: cpu-profile.ts [--top N] [--window MS] FILE.cpuprofile...');
    process.exit(2);
  }
  const options = { top: Number(args.top ?? 20), windowMs: Number(args.window ?? 4000) };
  for (const file of files) console.log(summarizeProfile(file, options).join('\n'));
}
