/**
 * Expansion through the whole daemon, where a table line that expansion
 * lets through reaches the queue: what one bad line costs the other
 * recipients of the same message.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cleanUpAfterEach, Dialog, freePort, startServing, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();

it('a command the queue cannot hold (a TAB in it) is refused at RCPT; the other recipients are delivered', { timeout: 60_000 }, async () => {
  // Before: RCPT answered 250, the queue refused the envelope at the commit ("invalid
  // delivery"), and the client heard 421 after DATA, for every recipient, at every retry.
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  writeFileSync(join(dir, 'aliases'), 'tab: "|/bin/echo\tx"\nfine: "|/bin/true"\n');
  writeFileSync(conf, [
    `listen on 127.0.0.1 port ${port} hostname mx.test`,
    `table aliases file:${dir}/aliases`,
    'action "local" mbox alias <aliases> allow-exec',
    'match from any for domain "example.org" action "local"',
    '',
  ].join('\n'));
  const daemon = await startServing(conf, spool);
  running.push(daemon);
  const c = await Dialog.open(port);
  await c.send('EHLO client.test');
  expect(await c.send('MAIL FROM:<a@client.test>')).toBe('250 2.0.0 Ok');
  expect(await c.send('RCPT TO:<fine@example.org>')).toBe('250 2.1.5 Destination address valid: Recipient ok');
  expect(await c.send('RCPT TO:<tab@example.org>')).toBe('424 4.2.4 Mailing list expansion problem: <tab@example.org>');
  expect(await c.send('DATA')).toMatch(/^354 /);
  expect(await c.send('Subject: t\r\n\r\nhi\r\n.')).toMatch(/^250 2\.0\.0 [0-9a-f]{8} Message accepted for delivery$/);
  c.end();
  await daemon.waitFor(/info: lookup: tab@example\.org: table aliases, key tab: .* has a control character/);
});
