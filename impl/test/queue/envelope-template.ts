/**
 * An envelope to commit, for the queue's tests and for impl/fuzz/, which
 * runs outside vitest and so cannot import helpers.ts.
 */
import type { Envelope } from '../../src/queue/types.ts';

/** An envelope as the SMTP engine would commit it. */
export function template(recipient = 'bob', overrides: Partial<Envelope> = {}): Omit<Envelope, 'id' | 'messageId'> {
  return {
    sender: { user: 'alice', domain: 'example.org' },
    recipient: { user: recipient, domain: 'example.net' },
    originalRecipient: { user: recipient, domain: 'example.net' },
    dispatcher: 'relay',
    origin: { clientAddress: '192.0.2.1', clientName: 'mail.example.org', helo: 'mail.example.org' },
    createdAt: 1_700_000_000,
    expiresAt: 1_700_345_600,
    attempts: 0,
    ...overrides,
  };
}
