/**
 * Checking a user and password given with SMTP AUTH against a listener's
 * credentials table (`listen on ... auth <creds>`), whose entries map a
 * user to a crypt(3) hash:
 *
 *     alice  $6$Lm3XLYAzXPbFBBNy$nt5Y8XL0...
 */
import type { Table } from '../table/table.ts';
import { verifyPassword } from './password.ts';

/**
 * A hash for users the table does not have, made by `smtpctl encrypt` from
 * random text nobody kept. Any `$6$` hash with default rounds would do:
 * what matters is that checking against it costs what checking a real
 * entry costs.
 */
const DUMMY_HASH =
  '$6$YTh2yRFB98TJHiaO$ioVopkzlPVeHgqvpAEPS2V.VH2srNXAY8mESP89WAyMVxmkLHidk6JqMfYCEiGm0xzWS/I.06ZL.kEyr4ChPH0';

// #region check-credentials
/**
 * Is `password` the password of `user` in `table`?
 *
 * An unknown user is refused only after hashing the password against a
 * dummy hash, so that the answer takes as long as for a known user with a
 * wrong password. Answering at once would tell a client, by the time the
 * "535" takes to arrive, which user names exist. The dummy is `$6$` with
 * default rounds, what `smtpctl encrypt` writes; a table of slower hashes
 * (bcrypt, more rounds) still shows the difference.
 *
 * A table that cannot answer throws its TableError: that is a temporary
 * failure ("454"), not a wrong password.
 *
 * The check is asynchronous because in the daemon it is a question to
 * another process, the lookup process, which owns the tables and hands
 * the hashing to a thread of its own (`verify`: PasswordThread).
 */
export async function checkCredentials(
  table: Table, user: string, password: string | Uint8Array, verify: PasswordCheck = verifyHere,
): Promise<boolean> {
  const entry = table.lookup('credentials', user);
  const matches = await verify(password, entry?.password ?? DUMMY_HASH);
  return entry !== undefined && matches;
}
// #endregion check-credentials

/** How a password is checked against a hash: here, or on another thread (PasswordThread). */
export type PasswordCheck = (password: string | Uint8Array, hash: string) => boolean | Promise<boolean>;

const verifyHere: PasswordCheck = (password, hash) => verifyPassword(password, hash);
