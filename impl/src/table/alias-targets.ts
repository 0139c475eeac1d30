/**
 * The value of an alias or virtual entry: a comma-separated list of
 * targets (aliases(5)), each recognised by its form.
 */
import type { AliasTarget, MailAddr } from './types.ts';

/**
 * Splits a value at the commas that are outside quotes, as OpenSMTPD's
 * expand_line_split() (expand.c) does: a backslash makes the next
 * character literal and is dropped; quotes are kept, so that a command
 * can be written `"|/usr/bin/vacation -a joe, jim"`. Empty items are
 * skipped. Undefined if a quote or an escape is left open.
 */
export function splitTargets(value: string): string[] | undefined {
  const items: string[] = [];
  let item = '';
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (c === '\\') {
      if (i + 1 === value.length) return undefined;
      item += value.charAt(++i);
      continue;
    }
    if (c === ',' && quote === undefined) {
      items.push(item);
      item = '';
      continue;
    }
    item += c;
    if ((c === '"' || c === "'") && (quote === undefined || quote === c)) {
      quote = quote === undefined ? c : undefined;
    }
  }
  if (quote !== undefined) return undefined;
  items.push(item);
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Whether a target holds a control character (NUL, TAB, ESC...). None is
 * a target: the queue keeps no control character in an envelope, so a
 * file or command with one would be accepted at RCPT TO and then fail
 * the commit of the whole message, every co-recipient's included; and a
 * NUL would end the string in C, so that 6.8 runs less of the command
 * than the line shows.
 */
export function hasControlCharacter(text: string): boolean {
  return /[\x00-\x1f\x7f]/.test(text);
}

/**
 * Reads one target, trying the forms in OpenSMTPD's order
 * (text_to_expandnode() in to.c): error, include, command, file, address,
 * user name. Undefined if it is none of them, or holds a control character.
 */
export function parseAliasTarget(text: string): AliasTarget | undefined {
  if (hasControlCharacter(text)) return undefined;
  const lower = text.toLowerCase();

  const error = /^:?error:([45]\d\d) ([A-Za-z0-9].*)$/i.exec(text);
  if (lower.startsWith('error:') || lower.startsWith(':error:')) {
    return error?.[1] && error[2] ? { kind: 'error', code: Number(error[1]), message: error[2] } : undefined;
  }

  const include = /^:?include:/i.exec(text);
  if (include) {
    const path = text.slice(include[0].length);
    return path.startsWith('/') ? { kind: 'include', path } : undefined;
  }

  // "|command", or the same in double quotes so that it may hold commas.
  if (text.startsWith('|')) return { kind: 'command', command: text.slice(1) };
  if (text.startsWith('"|')) {
    return text.length > 2 && text.endsWith('"') ? { kind: 'command', command: text.slice(2, -1) } : undefined;
  }

  if (text.startsWith('/')) return { kind: 'file', path: text };

  const address = parseTargetAddress(text);
  if (address) return { kind: 'address', ...address };

  if (/^[A-Za-z0-9_.+-]+$/.test(text)) return { kind: 'username', user: text };
  return undefined;
}

/**
 * `user@domain`, split at the first `@`, with the characters
 * alias_is_address() (to.c) allows. An item with an `@` that fails here
 * is no target, and the recipient gets `424 4.2.4`, as for any
 * malformed entry. OpenSMTPD 6.8 differs for one kind of item: its
 * alias_is_address() has written a NUL over the `@` by the time it
 * refuses the domain, so the user name check that comes next sees only
 * the local part, and `root@@x` or `root@b_c.test` is taken as the local
 * user root (the RCPT gets 250). A typo in a domain must not send the
 * mail to whoever has that name on this host.
 */
function parseTargetAddress(text: string): MailAddr | undefined {
  const at = text.indexOf('@');
  if (at <= 0 || at === text.length - 1) return undefined;
  const user = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (!/^[A-Za-z0-9!#$%*/?|^{}`~&'+=_.-]+$/.test(user)) return undefined;
  if (!/^[A-Za-z0-9.-]+$/.test(domain)) return undefined;
  return { user, domain };
}

/** Why an item that parseAliasTarget() refused is not a target, for the log. */
export function notATarget(item: string): string {
  return hasControlCharacter(item)
    ? 'has a control character, which no target may hold'
    : 'is not a user, an address, a /file, a |command, :include:/file or error:code message';
}

/**
 * Reads an alias value into its targets, in order, each once. Throws a
 * plain Error naming the first item that is not a target; the caller adds
 * where the value came from.
 */
export function parseAliasValue(value: string): AliasTarget[] {
  const items = splitTargets(value);
  if (items === undefined) throw new Error(`unbalanced quote or trailing backslash in ${JSON.stringify(value)}`);
  const targets: AliasTarget[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const target = parseAliasTarget(item);
    if (!target) throw new Error(`${JSON.stringify(item)} ${notATarget(item)}`);
    const id = JSON.stringify(target);
    if (!seen.has(id)) targets.push(target);
    seen.add(id);
  }
  return targets;
}
