// Commit a message, crash before a second one is committed, start again,
// then damage an envelope file and start again: what the spool holds each time.
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  type Envelope, formatEnvelopeId, formatMessageId, openQueueBackend,
} from '@saf/impl/queue';

const dir = await mkdtemp(join(tmpdir(), 'the-queue-'));
const spool = join(dir, 'spool');
const log = (line: string) => console.log(`  log: ${line}`);

try {
  // 1. Receive a message for two recipients and commit it: the moment smtpd says 250.
  let queue = await openQueueBackend('fs', { spool, log });
  const message = await queue.createMessage();
  await message.write(Buffer.from('Subject: hello\r\n\r\nSee you at noon.\r\n'));
  const envelopes = await message.commit([envelope('bob'), envelope('carol')]);
  console.log('1. committed, two envelopes:');
  await show();
  console.log(`  ${await readFile(file(envelopes[0]!), 'utf8')}`.trimEnd());

  // 2. The process dies while a second message is on its way in. Its content
  //    is in incoming/, and its commit had begun: one envelope file is in its
  //    bucket already. The rename that would have committed it never ran.
  const partial = await queue.createMessage();
  await partial.write(Buffer.from('Subject: never finished\r\n'));
  await queue.close(); // what a crash leaves: incoming/<msgid> stays on disk
  const msgid = formatMessageId(partial.id);
  await writeFile(join(spool, 'queue', msgid.slice(0, 2), `${msgid}00000001`), '{}\n');
  console.log('2. crashed before a second message was committed:');
  await show();

  // 3. Start again: opening the spool removes what no commit covers.
  console.log('3. started again:');
  queue = await openQueueBackend('fs', { spool, log });
  await recover(queue);
  await show();

  // 4. Damage carol's envelope (cut it in half) and start again.
  const carol = file(envelopes[1]!);
  await truncate(carol, Math.floor((await readFile(carol)).length / 2));
  await queue.close();
  console.log("4. carol's envelope cut in half; started again:");
  queue = await openQueueBackend('fs', { spool, log });
  await recover(queue);
  await show();
  await queue.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** An envelope as the SMTP engine would commit it, for one recipient at example.net. */
function envelope(user: string): Omit<Envelope, 'id' | 'messageId'> {
  const address = { user, domain: 'example.net' };
  return {
    sender: { user: 'alice', domain: 'example.org' },
    recipient: address,
    originalRecipient: address,
    dispatcher: 'relay',
    origin: { clientAddress: '192.0.2.1', helo: 'mail.example.org' },
    createdAt: 1_700_000_000,
    expiresAt: 1_700_345_600,
    attempts: 0,
  };
}

/** Where an envelope's file is: queue/<xx>/<evpid>. */
function file(e: Envelope): string {
  const evpid = formatEnvelopeId(e.id);
  return join(spool, 'queue', evpid.slice(0, 2), evpid);
}

/** Prints what recover() yields, sorted by recipient. */
async function recover(queue: Awaited<ReturnType<typeof openQueueBackend>>): Promise<void> {
  const found: Envelope[] = [];
  for await (const e of queue.recover()) found.push(e);
  found.sort((a, b) => a.recipient.user.localeCompare(b.recipient.user));
  console.log('  recover() yields:');
  for (const e of found) console.log(`    ${formatEnvelopeId(e.id)} to ${e.recipient.user}@${e.recipient.domain}`);
}

/** Prints every file under the spool (the 256 buckets are always there; empty ones are not shown). */
async function show(): Promise<void> {
  const files = (await readdir(spool, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => relative(spool, join(entry.parentPath, entry.name)));
  // By directory, then content (8 hex digits) before envelopes (16): the same order on every run.
  const key = (f: string) => [f.split('/')[0]!, f.length] as const;
  files.sort((a, b) => key(a)[0].localeCompare(key(b)[0]) || key(a)[1] - key(b)[1] || a.localeCompare(b));
  console.log('  spool:');
  for (const f of files) console.log(`    ${f}`);
}
