// Check two passwords against a hash made by `smtpctl encrypt`, the way
// the server checks AUTH against a credentials table.
import { hashMethod, verifyPassword } from '@saf/impl/crypto';

const hash = process.argv[2] ?? '';
console.log(`method: ${hashMethod(hash) ?? 'unknown'}`);
for (const guess of ['correct horse', 'correct horse!']) {
  console.log(`${JSON.stringify(guess).padEnd(18)} ${verifyPassword(guess, hash) ? 'matches' : 'does not match'}`);
}
