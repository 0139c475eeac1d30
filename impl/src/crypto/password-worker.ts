/**
 * The body of the thread that PasswordThread (password-thread.ts) runs:
 * it checks one password against one hash at a time, and answers.
 */
import { parentPort } from 'node:worker_threads';
import { verifyPassword } from './password.ts';

interface Question {
  id: number;
  password: string | Uint8Array;
  hash: string;
}

parentPort!.on('message', ({ id, password, hash }: Question) => {
  let ok = false;
  try {
    ok = verifyPassword(password, hash);
  } catch {
    // a hash our crypt() cannot read matches nothing
  }
  parentPort!.postMessage({ id, ok });
});
