/**
 * The arguments of MAIL FROM and RCPT TO: a path (`<joe@example.org>`)
 * read into a MailAddress by the grammar of RFC 5321 4.1.2, and the ESMTP
 * parameters after it (`SIZE=1024 BODY=8BITMIME`). Nothing here is a
 * regular expression: the grammar is small enough to walk one character
 * at a time, and walking it gives a reason for every refusal.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { MailAddress } from '../queue/types.ts';
import { asciiUpper } from './input.ts';

/** What a path read to: the address (`null` for `<>`) and the text after `>`. */
export type PathResult =
  | { ok: true; address: MailAddress | null; rest: string }
  | { ok: false; reason: string; needsUtf8?: true };

export interface PathOptions {
  /** MAIL FROM may be `<>`, the null sender of bounces; RCPT TO may not. */
  nullAllowed: boolean;
  /** The transaction asked for SMTPUTF8 (RFC 6531): UTF-8 is allowed in both parts. */
  utf8: boolean;
  /** Given to an address without a domain (`<postmaster>`), as OpenSMTPD's smtp_mailaddr() does. */
  localDomain: string;
}

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets, brackets included. */
const MAX_PATH = 256;
/** RFC 1035 2.3.4: a label is at most 63 octets, a name at most 255. */
const MAX_LABEL = 63;
const MAX_DOMAIN = 255;

function isLetDig(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

/** A character of a domain label: letter, digit, `-`, and `_`, which DNS names carry and OpenSMTPD accepts. */
function isLabelChar(c: number): boolean {
  return isLetDig(c) || c === 0x2d || c === 0x5f;
}

/** atext of RFC 5322 3.2.3 (letters, digits and `` !#$%&'*+-/=?^_`{|}~ ``), as a table by ASCII code. */
const ATEXT = new Uint8Array(128);
for (let c = 0; c < 128; c++) if (isLetDig(c) || "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(c))) ATEXT[c] = 1;

function isAtext(c: number): boolean {
  return c < 128 && ATEXT[c] === 1;
}

class PathError extends Error {
  constructor(readonly reason: string, readonly needsUtf8 = false) {
    super(reason);
  }
}

/** A cursor over one path, with the options it is read under. */
class Reader {
  i = 0;
  constructor(readonly s: string, readonly opts: PathOptions) {}

  code(): number {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }

  /** A non-ASCII character is allowed only under SMTPUTF8; outside it, RFC 6531 wants its own reply. */
  nonAscii(c: number): boolean {
    if (c < 0x80) return false;
    if (!this.opts.utf8) throw new PathError('non-ASCII character', true);
    return true;
  }
}

// #region read-local-part
/**
 * The local part, `Dot-string / Quoted-string` (RFC 5321 4.1.2).
 *
 * CVE-2020-7247: OpenSMTPD 6.6 checked the local part of MAIL FROM only
 * when the address had a domain, and a sender such as `<;sleep 66;>` went
 * unchecked into the shell command of a local delivery, as root. Here the
 * local part always matches the grammar, whether or not a domain follows.
 * The grammar is not enough, though: `$`, `|`, `` ` `` and `'` are atext,
 * and a quoted string may hold spaces and `;`. Addresses must therefore
 * never reach a shell; deliveries hand them to programs as arguments or in
 * the environment, never inside a command line.
 */
function readLocalPart(r: Reader): string {
  if (r.code() === 0x22 /* " */) return readQuoted(r);
  const start = r.i;
  for (;;) {
    const atom = r.i;
    for (let c = r.code(); c !== -1 && (isAtext(c) || r.nonAscii(c)); c = r.code()) r.i++;
    if (r.i === atom) throw new PathError(r.i === start ? 'empty local part' : "empty atom in local part ('..' or a final '.')");
    if (r.code() !== 0x2e /* . */) return r.s.slice(start, r.i);
    r.i++;
  }
}

/**
 * A quoted local part (`"john doe"@example.org`). It is kept quoted, as
 * written, unless its content is a plain dot-string: `"joe"` and `joe` are
 * the same mailbox (RFC 5321 4.1.2), and the rules should see one form.
 */
function readQuoted(r: Reader): string {
  const start = r.i++;
  let content = '';
  for (;;) {
    const c = r.code();
    if (c === -1) throw new PathError('unterminated quoted string');
    r.i++;
    if (c === 0x22) break;
    if (c === 0x5c /* \ */) {
      const q = r.code();
      if (q < 0x20 || q > 0x7e) throw new PathError('invalid quoted pair');
      content += String.fromCharCode(q);
      r.i++;
    } else if ((c >= 0x20 && c <= 0x7e) || r.nonAscii(c)) {
      content += String.fromCharCode(c);
    } else {
      throw new PathError('control character in quoted string');
    }
  }
  return isDotString(content) ? content : r.s.slice(start, r.i);
}
// #endregion read-local-part

function isDotString(s: string): boolean {
  if (s === '') return false;
  for (const atom of s.split('.')) {
    if (atom === '') return false;
    for (let k = 0; k < atom.length; k++) if (!isAtext(atom.charCodeAt(k))) return false;
  }
  return true;
}

/** `Domain / address-literal`: letters, digits and inner hyphens in labels, or `[192.0.2.1]`, `[IPv6:2001:db8::1]`. */
function readDomain(r: Reader): string {
  const start = r.i;
  if (r.code() === 0x5b /* [ */) {
    const close = r.s.indexOf(']', r.i);
    if (close < 0) throw new PathError("unterminated address literal (no ']')");
    const literal = r.s.slice(r.i + 1, close);
    // Node's isIPv6 takes a zone (`fe80::1%eth0`); RFC 5321's IPv6-addr has none, nor has inet_pton(3), which 6.8 uses.
    const v6 = literal.slice(0, 5).toLowerCase() === 'ipv6:' ? literal.slice(5) : undefined;
    const ok = v6 !== undefined ? isIPv6(v6) && !v6.includes('%') : isIPv4(literal);
    if (!ok) throw new PathError(`invalid address literal [${literal}]`);
    r.i = close + 1;
    return r.s.slice(start, r.i);
  }
  for (;;) {
    const label = r.i;
    for (let c = r.code(); c !== -1 && (isLabelChar(c) || r.nonAscii(c)); c = r.code()) r.i++;
    const text = r.s.slice(label, r.i);
    if (text === '') throw new PathError(r.i === start ? 'empty domain' : 'empty label in domain');
    if (text.startsWith('-') || text.endsWith('-')) throw new PathError(`label "${text}" starts or ends with '-'`);
    if (Buffer.byteLength(text) > MAX_LABEL) throw new PathError('domain label longer than 63 octets');
    if (r.code() !== 0x2e) break;
    r.i++;
  }
  const domain = r.s.slice(start, r.i);
  if (Buffer.byteLength(domain) > MAX_DOMAIN) throw new PathError('domain longer than 255 octets');
  return domain;
}

/**
 * Reads `<[@route,@route:]local@domain>` or `<>` at the start of `text`.
 * A source route (RFC 5321 4.1.2, `A-d-l`) is read and dropped, as RFC 5321
 * C asks. An address without a domain gets the server's own name, which is
 * how `RCPT TO:<postmaster>` (which every server must accept) is read.
 */
export function parsePath(text: string, opts: PathOptions): PathResult {
  const r = new Reader(text, opts);
  try {
    if (r.code() !== 0x3c /* < */) throw new PathError("address must be enclosed in '<' and '>'");
    r.i++;
    let address: MailAddress | null = null;
    if (r.code() === 0x3e /* > */) {
      if (!opts.nullAllowed) throw new PathError('empty address');
    } else {
      if (r.code() === 0x40 /* @ */) {
        for (;;) {
          r.i++;
          readDomain(r);
          if (r.code() !== 0x2c /* , */) break;
          r.i++;
          if (r.code() !== 0x40) throw new PathError("expected '@' after ',' in source route");
        }
        if (r.code() !== 0x3a /* : */) throw new PathError("source route must end with ':'");
        r.i++;
      }
      const user = readLocalPart(r);
      let domain = opts.localDomain;
      if (r.code() === 0x40) {
        r.i++;
        domain = readDomain(r);
      }
      address = { user, domain };
    }
    if (r.code() !== 0x3e) throw new PathError(r.code() === -1 ? "missing '>'" : `unexpected '${text[r.i]}' in address`);
    r.i++;
    if (Buffer.byteLength(text.slice(0, r.i)) > MAX_PATH) throw new PathError('address longer than 256 octets');
    const rest = text.slice(r.i);
    if (rest !== '' && rest.charCodeAt(0) !== 0x20) throw new PathError("expected a space after '>'");
    return { ok: true, address, rest };
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    return err.needsUtf8 ? { ok: false, reason: err.reason, needsUtf8: true } : { ok: false, reason: err.reason };
  }
}

/** Is `text` a domain or an address literal, as HELO and EHLO must give? */
export function isDomain(text: string): boolean {
  const r = new Reader(text, { nullAllowed: false, utf8: false, localDomain: '' });
  try {
    readDomain(r);
    return r.i === text.length;
  } catch (err) {
    if (err instanceof PathError) return false;
    throw err;
  }
}

/** `user@domain`, or the empty string for the null sender: how hooks and logs see an address. */
export function addressText(address: MailAddress | null): string {
  return address === null ? '' : `${address.user}@${address.domain}`;
}

/** One ESMTP parameter, `KEYWORD[=value]`, with the keyword in capitals. */
export interface EsmtpParam {
  key: string;
  value?: string;
  /** As written, for replies. */
  text: string;
}

/**
 * The parameters after a path (RFC 5321 4.1.2: `esmtp-keyword ["="
 * esmtp-value]`, separated by spaces). Returns a reason when one is malformed.
 */
export function parseParams(rest: string): EsmtpParam[] | string {
  const params: EsmtpParam[] = [];
  for (const text of rest.split(' ')) {
    if (text === '') continue;
    const eq = text.indexOf('=');
    const key = asciiUpper(eq < 0 ? text : text.slice(0, eq));
    if (key === '' || !isLetDig(key.charCodeAt(0)) || ![...key].every((ch) => isLetDig(ch.charCodeAt(0)) || ch === '-')) {
      return `invalid parameter ${text}`;
    }
    if (eq < 0) {
      params.push({ key, text });
      continue;
    }
    const value = text.slice(eq + 1);
    if (value === '' || value.includes('=')) return `invalid value in ${text}`;
    params.push({ key, value, text });
  }
  return params;
}

/**
 * Decodes xtext (RFC 3461 4): printable ASCII but `+` and `=`, with `+HH`
 * for any other octet. ENVID and ORCPT travel in it. `undefined` if malformed.
 *
 * The octets are read as UTF-8, the only way a client can write a
 * non-ASCII character in xtext (`+C3+A9` is `é`), and the way the bounce
 * writes it back (mime.ts xtext and recipientAddress). Taking each octet
 * for a character of its own made `é` two characters, which came back
 * in the report as `+C3+83+C2+A9`: an ENVID the client never sent, so
 * its software could not match the report to the message. Octets that
 * are not UTF-8 have no character to become, and are refused.
 */
export function decodeXtext(text: string): string | undefined {
  const octets: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b /* + */) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      octets.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x3d) {
      return undefined;
    } else {
      octets.push(c);
    }
  }
  try {
    return UTF8.decode(new Uint8Array(octets));
  } catch {
    return undefined;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
