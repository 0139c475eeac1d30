import { describe, expect, it } from 'vitest';
import { queueChannel } from '../../src/proc/channels/queue.ts';
import { array, hex, nullable, object, oneOf, optional, ProtocolError, string, uint32 } from '../../src/proc/schema.ts';

describe('schemas: what a message must look like', () => {
  const commit = object({ msgid: uint32, to: array(object({ user: string, domain: string }), 2), ret: optional(oneOf(['FULL', 'HDRS'])) });

  it('returns the value with only the declared fields', () => {
    const parsed = commit.parse({ msgid: 7, to: [{ user: 'a', domain: 'b', extra: 1 }], sneaky: true });
    expect(parsed).toEqual({ msgid: 7, to: [{ user: 'a', domain: 'b' }] });
  });

  it('names the path of the first field that is wrong', () => {
    expect(() => commit.parse({ msgid: 7, to: [{ user: 'a', domain: 3 }] })).toThrow('to[0].domain: expected a string');
    expect(() => commit.parse({ msgid: -1, to: [] })).toThrow('msgid: expected an unsigned 32-bit integer');
    expect(() => commit.parse({ msgid: 1, to: [], ret: 'ALL' })).toThrow('ret: expected one of FULL, HDRS');
    expect(() => commit.parse(null)).toThrow(ProtocolError);
  });

  it('bounds arrays, so a peer cannot make the receiver allocate without limit', () => {
    const to = [1, 2, 3].map(() => ({ user: 'a', domain: 'b' }));
    expect(() => commit.parse({ msgid: 1, to })).toThrow('to: expected at most 2 items');
  });

  it('checks 64-bit ids as hex text and allows null where declared', () => {
    expect(hex(16).parse('0a1b2c3d4e5f6071')).toBe('0a1b2c3d4e5f6071');
    expect(() => hex(16).parse('0A1B2C3D4E5F6071')).toThrow(ProtocolError);
    expect(nullable(string).parse(null)).toBeNull();
  });

  it('checks a commit of the queue channel field by field', () => {
    const spec = queueChannel.calls['queue.message.commit'];
    const draft = {
      sender: null, recipient: { user: 'bob', domain: 'example.org' }, originalRecipient: { user: 'bob', domain: 'example.org' },
      dispatcher: 'local', origin: { clientAddress: '127.0.0.1', helo: 'client' }, createdAt: 1, expiresAt: 2, attempts: 0,
    };
    expect(spec.request.parse({ type: 'queue.message.commit', msgid: 5, envelopes: [draft] })).toEqual({ msgid: 5, envelopes: [draft] });
    expect(() => spec.request.parse({ msgid: 5, envelopes: [{ ...draft, origin: { helo: 'x' } }] }))
      .toThrow('envelopes[0].origin.clientAddress: expected a string');
  });
});
