// The bounce for the envelope of the-scheduler/retries, which expired at
// 21:00 after twelve tries; then what changes with DSN and with size.
import { readFileSync } from 'node:fs';
import type { Envelope } from '@saf/impl/queue';
import {
  buildBounce, EXPIRED_STATUS, splitOriginal, whyNoNotice, type BounceInput,
} from '../../../impl/src/bounce/index.ts';

// The queue stores a message with CRLF line ends, as it arrived.
const original = splitOriginal(Buffer.from(readFileSync('original.eml', 'utf8').replace(/\r?\n/g, '\r\n')));
const at = (time: string) => Date.parse(`2024-01-15T${time}Z`) / 1000;

const input: BounceInput = {
  action: 'failed',
  reportingHost: 'mx.example.org',
  sender: { user: 'alice', domain: 'example.org' },
  arrivalDate: at('09:00:00'),
  recipients: [{
    finalRecipient: 'dave@example.net',
    status: EXPIRED_STATUS,
    diagnostic: 'delivery time expired; last error: 421 4.3.2 mx.example.net busy, try later',
    lastAttemptAt: at('21:00:00'),
  }],
  original,
  now: at('21:00:01'),
  messageId: '<bounce-1@mx.example.org>',
};
process.stdout.write(buildBounce(input).toString('utf8').replace(/\r\n/g, '\n'));

// What the third part holds, and whether there is a bounce at all.
const third = (changes: Partial<BounceInput>) => {
  const text = buildBounce({ ...input, ...changes }).toString('latin1');
  return [...text.matchAll(/^Content-Type: (\S+?);?$/gm)].at(-1)![1];
};
console.log('\nThe third part:');
const variants: [string, Partial<BounceInput>][] = [
  [`as above (no RET, ${original.size} bytes)`, {}],
  ['the client asked RET=HDRS', { ret: 'HDRS' }],
  ['a 5 MB message', { original: { ...original, size: 5_000_000 } }],
  ['a delay warning, not a failure', { action: 'delayed' }],
  ['a success report, RET=FULL', { action: 'delivered', ret: 'FULL' }],
];
for (const [what, changes] of variants) console.log(`  ${what.padEnd(32)} ${third(changes)}`);

console.log('\nWho gets no bounce:');
const alice = { user: 'alice', domain: 'example.org' };
const cases: [string, Pick<Envelope, 'sender' | 'dsn'>][] = [
  ['a message from alice', { sender: alice }],
  ['a bounce (sender <>)', { sender: null }],
  ['alice asked NOTIFY=NEVER', { sender: alice, dsn: { notify: ['NEVER'] } }],
  ['alice asked NOTIFY=DELAY', { sender: alice, dsn: { notify: ['DELAY'] } }],
];
for (const [what, envelope] of cases) {
  console.log(`  ${what.padEnd(32)} ${whyNoNotice(envelope, 'failure') ?? 'bounced'}`);
}
