// Ask a few tables the questions smtpd asks them, and print the answers.
import { openTable, type AliasTarget } from '@saf/impl/table';

const domains = openTable('domains', { backend: 'file', path: `${process.cwd()}/domains` });
console.log('domain: does the table list this host?');
for (const host of ['example.org', 'mx.example.org', 'a.b.example.org', 'EXAMPLE.ORG', 'example.net']) {
  console.log(`  ${host.padEnd(16)} ${domains.match('domain', host)}`);
}

const networks = openTable('networks', { backend: 'file', path: `${process.cwd()}/networks` });
console.log('netaddr: is this client inside a listed network?');
for (const addr of ['192.168.1.20', '192.168.2.20', '10.0.0.0', '10.1.2.3', '2001:db8:5::1']) {
  console.log(`  ${addr.padEnd(16)} ${networks.match('netaddr', addr)}`);
}

// aliases.db was built from the text file by makemap (see example.json).
const aliases = openTable('aliases', { backend: 'db', path: `${process.cwd()}/aliases.db` });
console.log('alias: where does mail for this name go?');
for (const name of ['team', 'postmaster', 'nobody']) {
  const targets = aliases.lookup('alias', name);
  console.log(`  ${name.padEnd(16)} ${targets ? targets.map(describe).join(', ') : 'not in the table'}`);
}

/** One alias target in words: each kind is delivered differently. */
function describe(t: AliasTarget): string {
  switch (t.kind) {
    case 'username': return `user ${t.user}`;
    case 'address': return `address ${t.user}@${t.domain}`;
    case 'file': return `file ${t.path}`;
    case 'command': return `command ${t.command}`;
    case 'include': return `include ${t.path}`;
    case 'error': return `error ${t.code} ${t.message}`;
  }
}
