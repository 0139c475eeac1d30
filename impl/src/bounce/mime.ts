/**
 * The small pieces of MIME and RFC 5322 a bounce is written with: header
 * folding, quoted-printable, a scan for 8-bit bytes and long lines, and
 * the encodings that keep addresses 7-bit in the delivery-status part.
 */

const CRLF = '\r\n';

/** RFC 5322 2.1.1: a line is at most 998 octets, CRLF excluded. */
export const MAX_LINE = 998;
/** RFC 5322 2.1.1: lines SHOULD stay within 78 characters; we fold there when we can. */
const FOLD_AT = 78;

/**
 * `Name: value`, folded at spaces so that lines stay within 78
 * characters where the value allows (RFC 5322 2.2.3): a fold puts CRLF
 * before a space, so unfolding (removing the CRLFs) gives the value back.
 * A run without spaces longer than a line can hold is cut, which adds a
 * space to it: it only happens to error texts, which are for people.
 */
export function field(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let first = true;
  for (const word of value.split(' ')) {
    for (const piece of cut(word, LONGEST_WORD)) {
      // Never fold right after the name, nor leave a line of white space alone (RFC 5322 3.2.2).
      if (!first && line.trim() !== '' && line.length + 1 + piece.length > FOLD_AT) {
        lines.push(line);
        line = '';
      }
      line += ` ${piece}`;
      first = false;
    }
  }
  lines.push(line);
  return lines.join(CRLF);
}

/** Longer runs without a space are cut: with a field name in front, a line must stay within 998 octets. */
const LONGEST_WORD = 900;

function cut(word: string, size: number): string[] {
  if (word.length <= size) return [word];
  const pieces: string[] = [];
  for (let i = 0; i < word.length; i += size) pieces.push(word.slice(i, i + size));
  return pieces;
}

/**
 * Quoted-printable (RFC 2045 6.7) for text that is not 7-bit or has
 * lines too long to send: UTF-8 bytes outside printable ASCII become
 * `=HH`, and lines longer than 76 characters end in a soft break `=`.
 */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split(CRLF)) {
    const bytes = Buffer.from(line, 'utf8');
    let current = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      const literal = (b >= 0x21 && b <= 0x7e && b !== 0x3d) || ((b === 0x20 || b === 0x09) && i < bytes.length - 1);
      const piece = literal ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
      if (current.length + piece.length > 75) {
        out.push(`${current}=`);
        current = '';
      }
      current += piece;
    }
    out.push(current);
  }
  return out.join(CRLF);
}

/**
 * What a part's Content-Transfer-Encoding must allow: 8-bit bytes, and
 * what neither 7bit nor 8bit allows (RFC 2045 2.7, 2.8): lines over 998
 * octets, or a CR that is not part of a CRLF.
 */
export interface ContentShape {
  eightBit: boolean;
  longLines: boolean;
  bareCr: boolean;
}

export function shapeOf(content: Buffer): ContentShape {
  let eightBit = false;
  let longLines = false;
  let bareCr = false;
  let start = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (b >= 0x80) eightBit = true;
    if (b === 0x0d && content[i + 1] !== 0x0a) bareCr = true;
    if (b === 0x0a) {
      const end = i > start && content[i - 1] === 0x0d ? i - 1 : i;
      if (end - start > MAX_LINE) longLines = true;
      start = i + 1;
    }
  }
  if (content.length - start > MAX_LINE) longLines = true;
  return { eightBit, longLines, bareCr };
}

/** True for text made only of printable ASCII and spaces: what a header or delivery-status field may hold. */
export function isPrintableAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/**
 * xtext (RFC 3461 4): printable ASCII but `+` and `=` as themselves,
 * every other octet as `+HH`. The envelope keeps ENVID and ORCPT decoded;
 * a value that is not plain ASCII goes back into xtext to be written in
 * the 7-bit delivery-status part.
 */
export function xtext(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * An address for Final-Recipient or Original-Recipient (`address-type;
 * generic-address`, RFC 3464 2.3.1). An ASCII address is written as it
 * is, under its type. An internationalized one cannot be, in a 7-bit
 * part: it becomes RFC 6533's `utf-8` type, whose xtext writes each
 * non-ASCII character as `\x{HEX}`.
 */
export function recipientAddress(type: string, address: string): string {
  if (isPrintableAscii(address)) return `${type}; ${address}`;
  let out = '';
  for (const ch of address) {
    const c = ch.codePointAt(0)!;
    // utf-8-addr-xtext has one escape for everything it cannot carry: non-ASCII, and also
    // controls, space, `+`, `=` and `\` (RFC 6533 3), where 3461's xtext would write `+2B`.
    if (c > 0x7e || c <= 0x20 || c === 0x2b || c === 0x3d || c === 0x5c) out += `\\x{${c.toString(16).toUpperCase()}}`;
    else out += ch;
  }
  return `utf-8; ${out}`;
}

/**
 * An address for To: (RFC 5322 3.4.1): the local part as it is when it
 * is a dot-atom, else quoted. Non-ASCII is kept (RFC 6532): such a
 * sender reached us over SMTPUTF8, and the bounce goes back the same way.
 */
export function mailbox(user: string, domain: string): string {
  const atext = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u{80}-\u{10FFFF}-]+$/u;
  const dotAtom = user.split('.').every((part) => atext.test(part));
  // A local part that came quoted (`"john smith"`) is kept with its quotes, as the envelope has it: quoting it again would name another mailbox.
  const quoted = /^"(?:[^"\\]|\\.)*"$/.test(user);
  const local = dotAtom || quoted ? user : `"${user.replace(/(["\\])/g, '\\$1')}"`;
  return `${local}@${domain}`;
}
