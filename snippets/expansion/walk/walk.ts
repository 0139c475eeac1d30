// What each recipient expands to, with the real Expander and the rules of
// smtpd.conf. smtpd.conf names /etc/mail/aliases and /etc/mail/virtual;
// here the tables are the copies next to this script, the accounts come
// from ./passwd, and alice's ~/.forward is ./alice.forward.
import { readFileSync } from 'node:fs';
import { loadConfig } from '@saf/impl/config';
import { Ruleset, type SessionInfo } from '@saf/impl/lookup';
import { openTable } from '@saf/impl/table';
// The expander and the logger, straight from the implementation's source.
import { Expander, PasswdFile, userbaseLookup, type Expansion } from '../../../impl/src/expand/index.ts';
import { createLogger } from '../../../impl/src/log/index.ts';

// checkFiles: false, because /etc/mail/aliases need not exist on this machine.
const { config, errors } = loadConfig('smtpd.conf', { checkFiles: false });
if (errors.length > 0) throw new Error(errors.join('\n'));

const ruleset = Ruleset.fromConfig(config, {
  localNames: { hostname: 'mx.example.org', addresses: ['127.0.0.1', '::1', '198.51.100.25'] },
});
const tables = new Map([
  ['aliases', openTable('aliases', { backend: 'file', path: `${process.cwd()}/aliases` })],
  ['vmap', openTable('vmap', { backend: 'file', path: `${process.cwd()}/virtual` })],
]);

let walk: string[] = [];
const log = createLogger({ verbose: 0, trace: new Set(['expand']), format: 'foreground', write: (l) => walk.push(l.trimEnd()) });

const expander = new Expander(config, {
  ruleset,
  tables,
  getpwnam: userbaseLookup(new PasswdFile(`${process.cwd()}/passwd`)),
  // In the daemon, the root parent opens ~/.forward; here only alice has one.
  readForward: async (user) =>
    user.name === 'alice'
      ? { status: 'ok', path: `${user.home}/.forward`, content: readFileSync('alice.forward', 'utf8') }
      : { status: 'missing' },
  log,
});

const stranger: SessionInfo = { local: false, address: '203.0.113.9', helo: 'client.example.com', tls: false };
const recipients = [
  'bob@example.org', 'bob+news@example.org', 'bob+lists@example.org', 'postmaster@example.org',
  'team@example.org', 'info@example.net', 'sales@example.net', 'anna@example.org', 'loop1@example.org', 'nobody@example.org',
];

for (const rcptTo of recipients) {
  walk = [];
  const expansion = await expander.expand({ session: stranger, mailFrom: 'ann@example.com', rcptTo });
  console.log(`RCPT TO:<${rcptTo}>`);
  if (rcptTo === 'team@example.org') for (const line of walk) console.log(`    ${line}`);
  for (const line of describe(expansion)) console.log(`  ${line}`);
  console.log();
}
ruleset.close();
for (const t of tables.values()) t.close();

/** One line per envelope the recipient became, or the reply that refuses it. */
function describe(e: Expansion): string[] {
  if (e.result !== 'ok') return [e.reply, `log: ${e.log}`];
  return e.recipients.map(({ recipient, dispatcher, delivery: d }) => {
    const to = `${recipient.user}@${recipient.domain}`.padEnd(24);
    if (!d) return `${to} action "${dispatcher}"`;
    const tag = d.subaddress === undefined ? '' : ` (+${d.subaddress})`;
    return `${to} action "${dispatcher}", mailbox of ${d.user}${tag}`;
  });
}
