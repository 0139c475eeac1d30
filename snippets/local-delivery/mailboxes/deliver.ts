// One message delivered for the user dave: into a Maildir, into an mbox
// (twice), to an mda that fails for now, and into a Maildir as root.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import type { LocalMethod } from '@saf/impl/config';
import type { Envelope, EnvelopeId, MessageId } from '@saf/impl/queue';
import { deliverLocal, mdaCommandLine, type UserRecord } from '../../../impl/src/delivery/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'local-delivery-'));
const dave: UserRecord = { name: 'dave', uid: 1000, gid: 1000, home: join(dir, 'home/dave') };
await mkdir(join(dir, 'var/mail'), { recursive: true }); // /var/mail, here in a temporary folder

// The queue stores a message as it arrived: CRLF line ends. A line of the
// body starts with "From ", another with ">From ".
const message = [
  'From: Alice <alice@example.org>',
  'To: dave@example.net',
  'Subject: the minutes',
  '',
  'From the minutes of Monday:',
  '>From now on, lunch is at noon.',
  '',
].join('\r\n');

try {
  await show('maildir', { kind: 'maildir', junk: false });
  await show('mbox', { kind: 'mbox' }, dave, false);
  await show('mbox, a second time', { kind: 'mbox' });
  await show('an mda that exits 75', { kind: 'mda', command: 'cat >/dev/null; echo "dave is over quota" >&2; exit 75' });
  await show('maildir, as root', { kind: 'maildir', junk: false }, { name: 'root', uid: 0, gid: 0, home: join(dir, 'root') });

  // The %{} specifiers of an mda command, filled in from a hostile recipient.
  const template = '/usr/local/bin/deliver -f %{sender} -t %{rcpt:lowercase}';
  const values = {
    sender: { user: 'alice', domain: 'example.org' },
    rcpt: { user: '"Dave;rm -rf ~"', domain: 'example.net' },
    dest: { user: 'dave', domain: 'example.net' },
    user: { username: 'dave', directory: dave.home },
  };
  console.log(`\n== %{} in an mda command\n  ${template}\n  ${mdaCommandLine(template, values)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** Delivers the message with one method, prints the outcome and, if asked, the file it went into. */
async function show(what: string, method: LocalMethod, user = dave, print = true): Promise<void> {
  const outcome = await deliverLocal(
    { envelope: envelope(), action: 'local', method, user, hostname: 'mx.example.net' },
    Readable.from([Buffer.from(message)]),
    { mailDir: join(dir, 'var/mail') },
  );
  console.log(`== ${what}: ${outcome.result}${outcome.result === 'ok' ? '' : `: ${outcome.reason}`}`);
  if (outcome.result !== 'ok' || !print || outcome.detail === undefined) return;
  console.log(`  ${relative(dir, outcome.detail)}:`);
  for (const line of (await readFile(outcome.detail, 'utf8')).split('\n').slice(0, -1)) console.log(`  | ${line}`);
}

/** An envelope from alice to dave, as the queue would hand it over. */
function envelope(): Envelope {
  const dave = { user: 'dave', domain: 'example.net' };
  return {
    id: 0x1a2b3c4d00000001n as EnvelopeId,
    messageId: 0x1a2b3c4d as MessageId,
    sender: { user: 'alice', domain: 'example.org' },
    recipient: dave,
    originalRecipient: dave,
    dispatcher: 'local',
    origin: { clientAddress: '192.0.2.7', helo: 'laptop.example.org' },
    createdAt: 1_705_309_200,
    expiresAt: 1_705_309_200 + 4 * 86400,
    attempts: 0,
  };
}
