/**
 * The `%{...}` format specifiers of smtpd.conf(5), FORMAT SPECIFIERS:
 * maildir paths, mda commands, mda wrappers and lmtp destinations may
 * name the sender, the recipient and the local user, and OpenSMTPD fills
 * them in at delivery time (mda_variables.c).
 *
 *     %{rcpt.user}            the recipient's user part
 *     %{rcpt.domain[-3:]}     its last three characters
 *     %{dest:lowercase|strip} the address after expansion, lowercased, without +tag
 *     %{sender:raw}           without the sanitizing
 *
 * A value comes from a stranger's envelope, so what it may contain
 * depends on where it goes. OpenSMTPD replaces the characters of its
 * MAILADDR_ESCAPE set (`!#$%&'*?`{|}~`, smtpd.h) with `:` unless the
 * `raw` modifier is given, and relies on its address parser to refuse
 * spaces, `;`, quotes and the like. This project's parser keeps quoted
 * local parts (`"a b;c"@example.org`), so the escaping here goes further,
 * by context, and applies even to `raw`:
 *
 *  - `command` (mda commands and wrappers, run by /bin/sh): every
 *    character that is not a letter, a digit, one of `@.+-_=,:/%` or a
 *    non-ASCII letter becomes `:`. No quoting, no spaces, no
 *    metacharacters: a value is at most one shell word. (A value may still
 *    start with `-`, which a program could read as an option: write `--`
 *    before it in the command when that matters.)
 *  - `path` (maildir paths, lmtp destinations): `/` and control
 *    characters become `:`, and an expansion that adds a `..` component
 *    is refused, so a value never leaves the directory the administrator
 *    wrote.
 *
 * `%{user.directory}` and `%{mda}` are the administrator's own data (the
 * userbase and the configuration) and are inserted as they are, as
 * OpenSMTPD does.
 */
import type { MailAddress } from '../queue/types.ts';

export const FORMAT_VARIABLES = [
  'sender', 'sender.user', 'sender.domain',
  'rcpt', 'rcpt.user', 'rcpt.domain',
  'dest', 'dest.user', 'dest.domain',
  'user.username', 'user.directory',
  'mbox.from', 'mda',
] as const;
export type FormatVariable = (typeof FORMAT_VARIABLES)[number];

export const FORMAT_MODIFIERS = ['lowercase', 'uppercase', 'strip', 'raw'] as const;
export type FormatModifier = (typeof FORMAT_MODIFIERS)[number];

/** Where an expanded string is used: it decides which characters a value may bring. */
export type FormatContext = 'path' | 'command';

/** What the variables are filled from. */
export interface FormatValues {
  /** `null` for the null sender `<>`. */
  sender: MailAddress | null;
  /** The recipient as the client wrote it (RCPT TO). */
  rcpt: MailAddress;
  /** The recipient after alias and virtual expansion. */
  dest: MailAddress;
  user: { username: string; directory: string };
  /** The wrapped command, when expanding an `mda wrapper`; `%{mda}` is an error anywhere else. */
  mda?: string;
  /** `smtp sub-addr-delim`, for the `strip` modifier; `+` by default. */
  subaddressDelimiter?: string;
}

/**
 * Why an expansion failed. `config`: the template itself is wrong (an
 * unknown variable, a bad modifier): the administrator must fix
 * smtpd.conf, and mail should wait. `value`: the template is fine but this
 * envelope's value does not fit it (an offset past its end).
 */
export class FormatError extends Error {
  constructor(message: string, readonly kind: 'config' | 'value') {
    super(message);
    this.name = 'FormatError';
  }
}

/** `[begin]`, `[begin:]`, `[:end]` or `[begin:end]`; the end offset is inclusive, as in OpenSMTPD. */
export interface FormatRange {
  begin?: number;
  end?: number;
  /** `[n]`: one character. */
  single?: boolean;
}

/** A template, read once: literal text, the user's home (a leading `~`), and tokens. */
export type FormatPart =
  | { kind: 'text'; text: string }
  | { kind: 'home' }
  | { kind: 'token'; source: string; variable: FormatVariable; range?: FormatRange; modifiers: FormatModifier[] };

const TOKEN = /^([A-Za-z.]+)(?:\[([^\]]*)\])?(?::(.*))?$/;
const INTEGER = /^-?\d+$/;

/** Reads a template; throws a FormatError of kind `config` that names the column of the problem. */
export function parseFormat(template: string): FormatPart[] {
  const parts: FormatPart[] = [];
  let text = '';
  let i = 0;
  // Only a leading `~` means the home directory, as in OpenSMTPD: a `~`
  // elsewhere is an ordinary character of a path.
  if (template === '~' || template.startsWith('~/')) {
    parts.push({ kind: 'home' });
    i = 1;
  }
  while (i < template.length) {
    const c = template[i];
    if (c === '%' && template[i + 1] === '%') {
      text += '%';
      i += 2;
    } else if (c === '%' && template[i + 1] === '{') {
      const close = template.indexOf('}', i + 2);
      if (close < 0) throw new FormatError(`unterminated %{ at column ${i + 1} of "${template}"`, 'config');
      if (text) parts.push({ kind: 'text', text });
      text = '';
      parts.push(parseToken(template.slice(i + 2, close), i + 1, template));
      i = close + 1;
    } else {
      text += c;
      i++;
    }
  }
  if (text) parts.push({ kind: 'text', text });
  return parts;
}

/** The error a template would give, or undefined: for checking smtpd.conf before any mail arrives. */
export function checkFormat(template: string): string | undefined {
  try {
    parseFormat(template);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function parseToken(body: string, column: number, template: string): FormatPart {
  const where = `%{${body}} at column ${column} of "${template}"`;
  const m = TOKEN.exec(body);
  if (!m) throw new FormatError(`malformed format specifier ${where}: expected %{name}, %{name[range]} or %{name:modifiers}`, 'config');
  const name = m[1]!.toLowerCase();
  if (!(FORMAT_VARIABLES as readonly string[]).includes(name)) {
    throw new FormatError(`unknown format variable ${where} (known: ${FORMAT_VARIABLES.join(', ')})`, 'config');
  }
  const part: FormatPart = { kind: 'token', source: `%{${body}}`, variable: name as FormatVariable, modifiers: [] };
  if (m[2] !== undefined) part.range = parseRange(m[2], where);
  if (m[3] !== undefined) {
    for (const word of m[3].split('|')) {
      const modifier = word.toLowerCase();
      if (!(FORMAT_MODIFIERS as readonly string[]).includes(modifier)) {
        throw new FormatError(`unknown modifier "${word}" in ${where} (known: ${FORMAT_MODIFIERS.join(', ')})`, 'config');
      }
      part.modifiers.push(modifier as FormatModifier);
    }
  }
  return part;
}

function parseRange(content: string, where: string): FormatRange {
  const bad = () => new FormatError(`bad range [${content}] in ${where}: write [n], [n:], [:m] or [n:m] with whole numbers`, 'config');
  const colon = content.indexOf(':');
  if (colon < 0) {
    if (!INTEGER.test(content)) throw bad();
    return { begin: Number(content), end: Number(content), single: true };
  }
  const [b, e] = [content.slice(0, colon), content.slice(colon + 1)];
  if ((b && !INTEGER.test(b)) || (e && !INTEGER.test(e))) throw bad();
  return { ...(b && { begin: Number(b) }), ...(e && { end: Number(e) }) };
}

/** Expands a template for one delivery; throws a FormatError. */
export function expandFormat(template: string, values: FormatValues, context: FormatContext): string {
  let out = '';
  for (const part of parseFormat(template)) {
    if (part.kind === 'text') out += part.text;
    else if (part.kind === 'home') out += values.user.directory;
    else out += expandToken(part, values, context);
  }
  if (context === 'path' && dotDotCount(out) > dotDotCount(template)) {
    throw new FormatError(`"${template}" expands to "${out}", which climbs out of its directory with ".."`, 'value');
  }
  return out;
}

// #region escape-value
function expandToken(part: Extract<FormatPart, { kind: 'token' }>, values: FormatValues, context: FormatContext): string {
  let value = lookup(part, values);
  const trusted = part.variable === 'user.directory' || part.variable === 'mda';
  for (const modifier of part.modifiers) {
    if (modifier === 'lowercase') value = value.toLowerCase();
    else if (modifier === 'uppercase') value = value.toUpperCase();
    else if (modifier === 'strip') value = stripSubaddress(value, values.subaddressDelimiter ?? '+');
  }
  if (!trusted) {
    if (!part.modifiers.includes('raw')) value = replaceChars(value, (c) => MAILADDR_ESCAPE.includes(c));
    value = replaceChars(value, context === 'command' ? unsafeInCommand : unsafeInPath);
  }
  return part.range ? slice(value, part.range, part.source) : value;
}
// #endregion escape-value

function lookup(part: Extract<FormatPart, { kind: 'token' }>, values: FormatValues): string {
  const address = (a: MailAddress | null) => (a && (a.user || a.domain) ? `${a.user}@${a.domain}` : '');
  switch (part.variable) {
    case 'sender': return address(values.sender);
    case 'sender.user': return values.sender?.user ?? '';
    case 'sender.domain': return values.sender?.domain ?? '';
    case 'rcpt': return address(values.rcpt);
    case 'rcpt.user': return values.rcpt.user;
    case 'rcpt.domain': return values.rcpt.domain;
    case 'dest': return address(values.dest);
    case 'dest.user': return values.dest.user;
    case 'dest.domain': return values.dest.domain;
    case 'user.username': return values.user.username;
    case 'user.directory': return values.user.directory;
    case 'mbox.from': return address(values.sender) || 'MAILER-DAEMON';
    case 'mda':
      if (values.mda === undefined) throw new FormatError(`${part.source} is only available in an mda wrapper`, 'config');
      return values.mda;
  }
}

/** `gilles+hackers@poolp.org` -> `gilles@poolp.org`; `gilles+hackers` -> `gilles`. */
function stripSubaddress(value: string, delimiter: string): string {
  const tag = value.indexOf(delimiter);
  if (tag < 0) return value;
  const at = value.indexOf('@', tag);
  return at < 0 ? value.slice(0, tag) : value.slice(0, tag) + value.slice(at);
}

// #region unsafe-characters
/** OpenSMTPD's MAILADDR_ESCAPE (smtpd.h): what a value loses unless `raw` is given. */
const MAILADDR_ESCAPE = "!#$%&'*?`{|}~";

/** A character that could change what /bin/sh does with the command line. */
function unsafeInCommand(c: string): boolean {
  const code = c.codePointAt(0)!;
  if (code >= 0xa0) return false;
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return false;
  return !'@.+-_=,:/%'.includes(c);
}

/** A character that could make a value more than one path component, or an unprintable file name. */
function unsafeInPath(c: string): boolean {
  const code = c.codePointAt(0)!;
  return c === '/' || code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0);
}
// #endregion unsafe-characters

function replaceChars(value: string, unsafe: (c: string) => boolean): string {
  let out = '';
  for (const c of value) out += unsafe(c) ? ':' : c;
  return out;
}

/**
 * `[begin:end]` over characters, with OpenSMTPD's rules: negative offsets
 * count from the end, the end is inclusive and clamped to the last
 * character, a begin past the end is an error, and an empty value stays
 * empty whatever the range. One departure: OpenSMTPD reads `[-1]` as
 * `[-1:-1]`, whose inclusive end lands one before its begin, and fails;
 * here `[n]` is the one character at n, so `[-1]` is the last one.
 */
function slice(value: string, range: FormatRange, source: string): string {
  const chars = Array.from(value);
  const n = chars.length;
  if (n === 0) return '';
  if (range.single) {
    const at = range.begin! < 0 ? range.begin! + n : range.begin!;
    if (at < 0 || at >= n) throw new FormatError(`${source}: offset ${range.begin} is outside "${value}" (${n} characters)`, 'value');
    return chars[at]!;
  }
  let begin = range.begin ?? 0;
  let end = range.end ?? n - 1;
  if (begin >= n) throw new FormatError(`${source}: offset ${begin} is past the end of "${value}" (${n} characters)`, 'value');
  if (end >= n) end = n - 1;
  if (begin < 0) begin += n;
  if (end < 0) end += n - 1;
  if (begin < 0 || end < 0 || end < begin) {
    throw new FormatError(`${source}: range [${range.begin ?? ''}:${range.end ?? ''}] selects nothing of "${value}"`, 'value');
  }
  return chars.slice(begin, end + 1).join('');
}

function dotDotCount(path: string): number {
  return path.split('/').filter((c) => c === '..').length;
}
