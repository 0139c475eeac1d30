/**
 * Descriptors the daemon inherited by accident, closed before it starts
 * anything.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

/** fdinfo's `flags:` is octal; this bit is O_CLOEXEC. */
const O_CLOEXEC = 0o2000000;

// #region close-inherited
/**
 * Closes every descriptor above stderr that the process inherited open
 * across exec: one without close-on-exec is not Node's (libuv opens all
 * of its own with O_CLOEXEC), so it came from whatever started smtpd, a
 * shell's redirection, a job runner's pipe. Left open, every child would
 * inherit it in turn, down to the commands of `mda` and `|cmd` targets,
 * which run as mail users: a pipe or file the operator's tools opened as
 * root, writable by any user who can put a command in ~/.forward.
 * OpenSMTPD calls closefrom(3) before it runs an MDA; Node's spawn has
 * nothing like it, so the parent cleans up once, at start, before it
 * forks anything. Linux only (/proc); elsewhere it does nothing. Returns
 * the descriptors it closed, for the log.
 */
export function closeInheritedDescriptors(): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (!(fd > 2)) continue;
    let flags: number;
    try {
      const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!match) continue;
      flags = parseInt(match[1]!, 8);
    } catch {
      continue; // the descriptor readdir used, closed since
    }
    if (flags & O_CLOEXEC) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // gone meanwhile
    }
  }
  return closed.sort((a, b) => a - b);
}
// #endregion close-inherited
