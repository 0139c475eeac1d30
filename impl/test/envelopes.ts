/**
 * Envelopes for tests: one plausible envelope, and its draft (what smtp
 * commits before the queue gives it ids), each changed by `overrides`.
 */
import type { Envelope, EnvelopeId, MessageId } from '../src/queue/types.ts';

export type Draft = Omit<Envelope, 'id' | 'messageId'>;

export function testDraft(overrides: Partial<Draft> = {}): Draft {
  return {
    sender: { user: 'alice', domain: 'example.org' },
    recipient: { user: 'bob', domain: 'example.net' },
    originalRecipient: { user: 'bob', domain: 'example.net' },
    dispatcher: 'local',
    origin: { clientAddress: '127.0.0.1', helo: 'client.example.org' },
    createdAt: 1_700_000_000,
    expiresAt: 1_700_345_600,
    attempts: 0,
    ...overrides,
  };
}

export function testEnvelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: 0x1a2b3c4d00000001n as EnvelopeId,
    messageId: 0x1a2b3c4d as MessageId,
    ...testDraft(),
    ...overrides,
  };
}
