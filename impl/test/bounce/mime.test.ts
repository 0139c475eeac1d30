/** Addresses as a bounce writes them: in To:, and in the delivery-status fields. */
import { describe, expect, it } from 'vitest';
import { mailbox, recipientAddress } from '../../src/bounce/mime.ts';

describe('a bounce\'s addresses', () => {
  it('in To:, keep a dot-atom as it is, quote what needs it, and never quote a quoted local part again', () => {
    expect(mailbox('joe.smith', 'example.org')).toBe('joe.smith@example.org');
    expect(mailbox('joe smith', 'example.org')).toBe('"joe smith"@example.org');
    expect(mailbox('"joe smith"', 'example.org')).toBe('"joe smith"@example.org');
    expect(mailbox('"evil \\"q\\" x,y@z"', 'v.test')).toBe('"evil \\"q\\" x,y@z"@v.test');
  });

  it('in Final-Recipient, write a non-ASCII address as RFC 6533\'s utf-8 xtext, with one kind of escape for all', () => {
    expect(recipientAddress('rfc822', 'joe+tag@example.org')).toBe('rfc822; joe+tag@example.org');
    expect(recipientAddress('rfc822', 'jürgen+é=\\@example.de')).toBe('utf-8; j\\x{FC}rgen\\x{2B}\\x{E9}\\x{3D}\\x{5C}@example.de');
  });
});
