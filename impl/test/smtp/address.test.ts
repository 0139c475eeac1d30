import { describe, expect, it } from 'vitest';
import { decodeXtext, isDomain, parseParams, parsePath, type PathOptions } from '../../src/smtp/address.ts';

const MAIL: PathOptions = { nullAllowed: true, utf8: false, localDomain: 'mx.test' };
const RCPT: PathOptions = { ...MAIL, nullAllowed: false };

function ok(text: string, opts = RCPT) {
  const r = parsePath(text, opts);
  if (!r.ok) throw new Error(`${text}: ${r.reason}`);
  return r;
}

function reason(text: string, opts = RCPT): string {
  const r = parsePath(text, opts);
  if (r.ok) throw new Error(`${text} was accepted`);
  return r.reason;
}

describe('parsePath', () => {
  it('reads a mailbox into local part and domain', () => {
    expect(ok('<joe@example.org>').address).toEqual({ user: 'joe', domain: 'example.org' });
    expect(ok("<o'brien+tag@mail.example.org>").address).toEqual({ user: "o'brien+tag", domain: 'mail.example.org' });
    expect(ok('<first.last@EXAMPLE.org> SIZE=10').rest).toBe(' SIZE=10');
  });

  it('takes the null sender only in MAIL FROM', () => {
    expect(ok('<>', MAIL).address).toBeNull();
    expect(reason('<>')).toBe('empty address');
  });

  it('gives an address without a domain the server name (RCPT TO:<postmaster>)', () => {
    expect(ok('<postmaster>').address).toEqual({ user: 'postmaster', domain: 'mx.test' });
  });

  it('keeps a quoted local part quoted, unless it is a plain dot-string', () => {
    expect(ok('<"john doe"@example.org>').address!.user).toBe('"john doe"');
    expect(ok('<"a\\"b"@example.org>').address!.user).toBe('"a\\"b"');
    expect(ok('<"joe"@example.org>').address!.user).toBe('joe');
    expect(reason('<"unterminated@example.org>')).toBe('unterminated quoted string');
  });

  it('reads address literals', () => {
    expect(ok('<joe@[192.0.2.1]>').address!.domain).toBe('[192.0.2.1]');
    expect(ok('<joe@[IPv6:2001:db8::1]>').address!.domain).toBe('[IPv6:2001:db8::1]');
    expect(reason('<joe@[300.1.1.1]>')).toBe('invalid address literal [300.1.1.1]');
    expect(reason('<joe@[2001:db8::1]>')).toBe('invalid address literal [2001:db8::1]');
  });

  it('drops a source route', () => {
    expect(ok('<@relay.example,@other.example:joe@example.org>').address).toEqual({ user: 'joe', domain: 'example.org' });
    expect(reason('<@relay.example joe@example.org>')).toBe("source route must end with ':'");
  });

  it('gives a reason for every refusal', () => {
    expect(reason('joe@example.org')).toBe("address must be enclosed in '<' and '>'");
    expect(reason('<joe@example.org')).toBe("missing '>'");
    expect(reason('<joe@@example.org>')).toBe('empty domain');
    expect(reason('<joe..x@example.org>')).toBe("empty atom in local part ('..' or a final '.')");
    expect(reason('<.joe@example.org>')).toBe('empty local part');
    expect(reason('<joe@example..org>')).toBe('empty label in domain');
    expect(reason('<joe@-example.org>')).toBe('label "-example" starts or ends with \'-\'');
    expect(reason('<joe smith@example.org>')).toBe("unexpected ' ' in address");
    expect(reason('<joe@example.org>x')).toBe("expected a space after '>'");
    expect(reason(`<joe@${'a'.repeat(64)}.org>`)).toBe('domain label longer than 63 octets');
    expect(reason(`<${'j'.repeat(250)}@example.org>`)).toBe('address longer than 256 octets');
  });

  // CVE-2020-7247: OpenSMTPD 6.6 let an unchecked local part through when the domain was empty.
  it('checks the local part whether or not a domain follows', () => {
    expect(reason('<;sleep 66;>', MAIL)).toBe('empty local part');
    expect(reason('<;sleep 66;@example.org>', MAIL)).toBe('empty local part');
    expect(reason('<joe\x00@example.org>', MAIL)).toBe("unexpected '\x00' in address");
  });

  it('allows UTF-8 only under SMTPUTF8', () => {
    expect(parsePath('<jöe@example.org>', RCPT)).toEqual({ ok: false, reason: 'non-ASCII character', needsUtf8: true });
    expect(ok('<jöe@exämple.org>', { ...RCPT, utf8: true }).address).toEqual({ user: 'jöe', domain: 'exämple.org' });
  });
});

describe('isDomain', () => {
  it('takes names and literals, as HELO needs', () => {
    expect(isDomain('client.example.org')).toBe(true);
    expect(isDomain('localhost')).toBe(true);
    expect(isDomain('my_pc.lan')).toBe(true);
    expect(isDomain('[127.0.0.1]')).toBe(true);
    expect(isDomain('not a name')).toBe(false);
    expect(isDomain('trailing.')).toBe(false);
    expect(isDomain('')).toBe(false);
  });
});

describe('parseParams and xtext', () => {
  it('splits keyword=value parameters', () => {
    expect(parseParams(' SIZE=100  body=8BITMIME SMTPUTF8')).toEqual([
      { key: 'SIZE', value: '100', text: 'SIZE=100' },
      { key: 'BODY', value: '8BITMIME', text: 'body=8BITMIME' },
      { key: 'SMTPUTF8', text: 'SMTPUTF8' },
    ]);
    expect(parseParams(' SIZE=')).toBe('invalid value in SIZE=');
    expect(parseParams(' -X=1')).toBe('invalid parameter -X=1');
  });

  it('decodes xtext', () => {
    expect(decodeXtext('rfc822+3Bjoe+2Bx@example.org')).toBe('rfc822;joe+x@example.org');
    expect(decodeXtext('bad+zz')).toBeUndefined();
    expect(decodeXtext('a=b')).toBeUndefined();
  });

  it('reads the octets of xtext as UTF-8, so that a bounce can write the same xtext back', () => {
    expect(decodeXtext('id+2Bx+C3+A9y')).toBe('id+x\u00e9y');
    expect(decodeXtext('+E2+82+AC')).toBe('\u20ac');
    // Not UTF-8: no character to keep, so the parameter is refused.
    expect(decodeXtext('a+E9b')).toBeUndefined();
    expect(decodeXtext('a+C3')).toBeUndefined();
  });
});
