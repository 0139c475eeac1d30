import { describe, expect, it } from 'vitest';
import {
  ENVELOPE_VERSION, encodeEnvelope, parseEnvelope, serializeEnvelope, validateEnvelope,
} from '../../src/queue/envelope-format.ts';
import type { Envelope, EnvelopeId, MessageId } from '../../src/queue/types.ts';
import { template } from './helpers.ts';

const full: Envelope = {
  ...template('bob'),
  id: 0x0a1b2c3d00c0ffeen as EnvelopeId,
  messageId: 0x0a1b2c3d as MessageId,
  origin: {
    tag: 'MX', clientAddress: '2001:db8::1', clientName: 'mx.example.org', helo: 'mx.example.org',
    authUser: 'alice', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256 },
  },
  dsn: { notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;bob@example.net', ret: 'HDRS', envid: 'QQ314159' },
  lastTryAt: 1_700_000_100,
  lastError: '421 4.7.0 try again later',
  attempts: 2,
};

/** The record on disk, as an object, with one field changed. */
function record(changes: Record<string, unknown>): Record<string, unknown> {
  return { ...JSON.parse(serializeEnvelope(full)), ...changes };
}

describe('envelope files', () => {
  it('are one line of JSON with a version, and round-trip every field', () => {
    const text = serializeEnvelope(full);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trimEnd()).not.toContain('\n');
    expect(text.startsWith(`{"version":${ENVELOPE_VERSION},"id":"0a1b2c3d00c0ffee","messageId":"0a1b2c3d"`)).toBe(true);
    expect(parseEnvelope(text)).toEqual({ envelope: full });
  });

  it('keep the null sender and leave out absent fields', () => {
    const bounce: Envelope = { ...full, sender: null };
    delete bounce.dsn;
    delete bounce.lastError;
    const parsed = parseEnvelope(serializeEnvelope(bounce));
    expect(parsed).toEqual({ envelope: bounce });
    expect(serializeEnvelope(bounce)).not.toContain('dsn');
  });

  it.each([
    ['truncated', serializeEnvelope(full).slice(0, 40), 'truncated (no final newline)'],
    ['not JSON', 'version: 1\n', 'not valid JSON'],
    ['an array', '[1]\n', 'not an object'],
  ])('refuses a file that is %s', (_what, text, error) => {
    expect(parseEnvelope(text)).toEqual({ error });
  });

  it.each([
    [{ version: 2 }, 'version mismatch (2)'],
    [{ extra: 1 }, 'unknown field extra'],
    [{ id: '0a1b2c3d00000000' }, 'invalid id'],
    [{ id: 12 }, 'invalid id'],
    [{ messageId: 'ffffffff' }, 'id does not belong to message id'],
    [{ messageId: '00000000' }, 'invalid message id'],
    [{ sender: { user: 'a' } }, 'invalid sender'],
    [{ recipient: { user: '', domain: 'example.net' } }, 'invalid recipient'],
    [{ recipient: { user: 'bob\r\nBcc: x', domain: 'example.net' } }, 'invalid recipient'],
    [{ originalRecipient: null }, 'invalid original recipient'],
    [{ dispatcher: '' }, 'invalid dispatcher'],
    [{ origin: { clientAddress: '192.0.2.1', helo: '' } }, 'empty helo'],
    [{ origin: { clientAddress: '192.0.2.1', helo: 'a\u0000b' } }, 'invalid helo'],
    [{ origin: { clientAddress: '', helo: 'x' } }, 'invalid client address'],
    [{ origin: { clientAddress: '192.0.2.1', helo: 'x', tls: { protocol: 'TLSv1.3' } } }, 'invalid tls'],
    [{ dsn: { notify: ['SOMETIMES'] } }, 'invalid dsn'],
    [{ dsn: { ret: 'ALL' } }, 'invalid dsn'],
    [{ expiresAt: 1 }, 'invalid times'],
    [{ createdAt: -5 }, 'invalid times'],
    [{ attempts: 1.5 }, 'invalid attempts'],
    [{ lastTryAt: 'yesterday' }, 'invalid last try'],
    [{ lastError: 'x'.repeat(1001) }, 'invalid last error'],
  ])('refuses %j: %s', (changes, error) => {
    expect(validateEnvelope(record(changes))).toEqual({ error });
  });

  // Found by impl/fuzz/disk.ts: a damaged file's field name went into the log line whole, line feeds and all.
  it('names a field or version from the file in a short line, its control characters escaped', () => {
    const name = 'a\nwarn: forged'.padEnd(200, 'x');
    expect(validateEnvelope(record({ [name]: 1 }))).toEqual({ error: `unknown field a\\u000awarn: forged${'x'.repeat(26)}...` });
    expect(validateEnvelope(record({ version: 'v'.repeat(100) }))).toEqual({ error: `version mismatch (${'v'.repeat(40)}...)` });
  });

  it('refuses a dispatcher that smtpd.conf does not have, when told which exist', () => {
    const text = serializeEnvelope(full);
    expect(parseEnvelope(text, { dispatchers: new Set(['relay']) })).toEqual({ envelope: full });
    expect(parseEnvelope(text, { dispatchers: new Set(['local']) })).toEqual({ error: 'unknown dispatcher: action "relay" is not in smtpd.conf' });
  });

  it('are never written if they would be refused when read back', () => {
    expect(encodeEnvelope(full)).toBe(serializeEnvelope(full));
    expect(() => encodeEnvelope({ ...full, origin: { ...full.origin, helo: '' } })).toThrow(
      /envelope 0a1b2c3d00c0ffee is invalid: empty helo/,
    );
  });
});
