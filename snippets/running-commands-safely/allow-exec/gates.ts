// The allow-exec gates, run for real: the same aliases and ~/.forward under
// three versions of one action line, then the delivery agent's last check
// on an envelope that names a command its action does not allow.
import { readFileSync } from 'node:fs';
import { parseConfig, type LocalAction } from '@saf/impl/config';
import { Ruleset, type SessionInfo } from '@saf/impl/lookup';
import { openTable } from '@saf/impl/table';
// The expander, the delivery agent's check and the logger, from the implementation's source.
import { Expander, PasswdFile, userbaseLookup, type ExpandedRecipient } from '../../../impl/src/expand/index.ts';
import { mayRunCommand } from '../../../impl/src/delivery/index.ts';
import { createLogger } from '../../../impl/src/log/index.ts';

const written = readFileSync('smtpd.conf', 'utf8');
const stranger: SessionInfo = { local: false, address: '203.0.113.9', helo: 'client.example.com', tls: false };
const recipients = ['alice@example.org', 'archive@example.org', 'tickets@example.org', 'bob@example.org'];

/** Expands every recipient under `text`; returns what tickets@ became, for the last part. */
async function gate(text: string): Promise<ExpandedRecipient[]> {
  const { config, errors } = parseConfig(text, { file: 'smtpd.conf' });
  if (errors.length > 0) throw new Error(errors.join('\n'));
  const action = config.actions.find((a) => a.name === 'local')!;
  console.log(`${action.loc.file}:${action.loc.line}: ${text.split('\n')[action.loc.line - 1]}`);
  const ruleset = Ruleset.fromConfig(config, { localNames: { hostname: 'mx.example.org', addresses: ['127.0.0.1'] } });
  const aliases = openTable('aliases', { backend: 'file', path: `${process.cwd()}/aliases` });
  const expander = new Expander(config, {
    ruleset,
    tables: new Map([['aliases', aliases]]),
    getpwnam: userbaseLookup(new PasswdFile(`${process.cwd()}/passwd`)),
    readForward: async (user) =>
      user.name === 'bob'
        ? { status: 'ok', path: `${user.home}/.forward`, content: readFileSync('bob.forward', 'utf8') }
        : { status: 'missing' },
    log: createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => console.log(`  ${l.trimEnd()}`) }),
  });
  let tickets: ExpandedRecipient[] = [];
  for (const rcptTo of recipients) {
    const e = await expander.expand({ session: stranger, mailFrom: 'ann@example.com', rcptTo });
    if (e.result !== 'ok') {
      console.log(`  RCPT TO:<${rcptTo}>  ${e.reply}`);
      console.log(`      info: lookup: ${rcptTo}: ${e.log}`);
      continue;
    }
    const what = e.recipients.map(({ delivery: d }) => (d!.kind === 'mailbox' ? `mailbox of ${d!.user}` : `${d!.kind} as ${d!.user}`));
    console.log(`  RCPT TO:<${rcptTo}>  250 2.1.5 (${what.join(', ')})`);
    if (rcptTo === 'tickets@example.org') tickets = e.recipients;
  }
  ruleset.close();
  aliases.close();
  console.log();
  return tickets;
}

await gate(written);
await gate(written.replace('alias <aliases>', 'alias <aliases> allow-exec'));
const accepted = await gate(written.replace('alias <aliases>', 'alias <aliases> allow-exec').replace('forward-file', 'forward-file allow-exec'));

// The queue now holds an envelope for the open-ticket command. Suppose
// the administrator removes allow-exec before it is delivered, or someone
// edits the envelope file: the agent checks it against smtpd.conf as it is.
const { config } = parseConfig(written, { file: 'smtpd.conf' });
const local = config.actions.find((a): a is LocalAction => a.name === 'local' && a.method.kind !== 'relay')!;
const command = accepted.find((r) => r.delivery?.kind === 'command')!.delivery!;
console.log('the delivery agent, with smtpd.conf as written:');
for (const [what, delivery] of [['the queued command', command], ['the same, without its source', { ...command, source: undefined }]] as const) {
  const verdict = mayRunCommand(local, delivery);
  console.log(`  ${what}: ${verdict.allowed ? 'runs' : `refused: ${verdict.reason}`}`);
}
