// The success report alice gets when her message reaches bob's mailbox,
// for a RCPT TO that asked NOTIFY=SUCCESS; then who gets one at all.
import { readFileSync } from 'node:fs';
import type { Envelope } from '@saf/impl/queue';
import { buildBounce, shouldReportSuccess, splitOriginal } from '../../../impl/src/bounce/index.ts';

// The queue stores a message with CRLF line ends, as it arrived.
const message = Buffer.from(readFileSync('original.eml', 'utf8').replace(/\r?\n/g, '\r\n'));
const at = (time: string) => Date.parse(`2024-01-15T${time}Z`) / 1000;

const report = buildBounce({
  action: 'delivered',
  reportingHost: 'mx.example.org',
  sender: { user: 'alice', domain: 'example.org' },
  arrivalDate: at('09:00:00'),
  // MAIL FROM:<alice@example.org> RET=FULL ENVID=contract-7
  ret: 'FULL',
  envid: 'contract-7',
  // RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@example.org
  recipients: [{ finalRecipient: 'bob@example.org', originalRecipient: 'rfc822;Bob@example.org', lastAttemptAt: at('09:00:02') }],
  original: splitOriginal(message),
  now: at('09:00:02'),
  messageId: '<report-1@mx.example.org>',
});
process.stdout.write(report.toString('utf8').replace(/\r\n/g, '\n'));

console.log('\nWho gets a success report:');
const alice = { user: 'alice', domain: 'example.org' };
const cases: [string, Pick<Envelope, 'sender' | 'dsn'>][] = [
  ['alice asked nothing', { sender: alice }],
  ['alice asked NOTIFY=FAILURE,DELAY', { sender: alice, dsn: { notify: ['FAILURE', 'DELAY'] } }],
  ['alice asked NOTIFY=SUCCESS', { sender: alice, dsn: { notify: ['SUCCESS'] } }],
  ['a bounce asked NOTIFY=SUCCESS', { sender: null, dsn: { notify: ['SUCCESS'] } }],
];
for (const [what, envelope] of cases) console.log(`  ${what.padEnd(34)} ${shouldReportSuccess(envelope) ? 'yes' : 'no'}`);
