/**
 * Passwords checked on a thread of their own: the same answers as
 * checking them here, and the event loop free meanwhile, so that the
 * lookup process answers RCPT TO while an AUTH is being hashed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/crypto/password.ts';
import { PasswordThread } from '../../src/crypto/password-thread.ts';

describe('the password thread', () => {
  const thread = new PasswordThread();
  afterAll(() => thread.close());

  it('gives the answers verifyPassword gives, for $6$ and bcrypt hashes and for hashes it cannot read', async () => {
    const sha = hashPassword('wonderland');
    const bcrypt = '$2b$04$' + 'a'.repeat(53); // well formed, matches nothing
    for (const [password, hash] of [['wonderland', sha], ['Wonderland', sha], ['x', bcrypt], ['x', '$6$abc'], ['x', 'not a hash']] as const) {
      expect(await thread.verify(password, hash)).toBe(verifyPassword(password, hash));
    }
  });

  it('leaves the event loop free while it hashes', async () => {
    const slow = hashPassword('secret', { rounds: 400_000 }); // about a second of hashing here
    let turns = 0;
    const counting = setInterval(() => turns++, 5);
    const started = Date.now();
    expect(await thread.verify('secret', slow)).toBe(true);
    clearInterval(counting);
    const took = Date.now() - started;
    // Checked on this thread, the interval could not have run at all until the hash was done.
    expect(turns).toBeGreaterThan(took / 5 / 4);
  });
});
