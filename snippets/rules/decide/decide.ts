// Which rule of smtpd.conf decides each recipient, and what the client
// would read. The sessions are made up; the rules are the real matcher's.
import { formatStatement, loadConfig } from '@saf/impl/config';
import { Ruleset, type EnvelopeInfo, type RuleTrace, type SessionInfo } from '@saf/impl/lookup';

const { config, errors } = loadConfig('smtpd.conf');
if (errors.length > 0) throw new Error(errors.join('\n'));

let trace: RuleTrace[] = [];
const ruleset = Ruleset.fromConfig(config, {
  localNames: { hostname: 'mx.example.org', addresses: ['127.0.0.1', '::1', '198.51.100.25'] },
  trace: (t) => trace.push(t),
});

const client = (address: string, more: Partial<SessionInfo> = {}): SessionInfo =>
  ({ local: false, address, helo: 'client.example.com', tls: false, ...more });
const sendmail: SessionInfo = { local: true, helo: 'mx.example.org', tls: false };

const cases: [string, SessionInfo, EnvelopeInfo, boolean?][] = [
  ['a stranger writes to bob', client('203.0.113.9'), { mailFrom: 'ann@example.com', rcptTo: 'bob@example.org' }],
  ['a stranger writes to a retired address', client('203.0.113.9'), { mailFrom: 'ann@example.com', rcptTo: 'old-sales@example.org' }],
  ['the office sends out', client('192.0.2.44'), { mailFrom: 'bob@example.org', rcptTo: 'carol@gmail.com' }],
  ['bob sends out from a hotel, logged in', client('203.0.113.50', { authUser: 'bob' }), { mailFrom: 'bob@example.org', rcptTo: 'carol@gmail.com' }],
  ['cron on the server sends out', sendmail, { mailFrom: 'root@mx.example.org', rcptTo: 'admin@gmail.com' }],
  ['a stranger tries to relay', client('203.0.113.9'), { mailFrom: 'spam@example.com', rcptTo: 'carol@gmail.com' }, true],
];

for (const [what, session, envelope, explain] of cases) {
  trace = [];
  const decision = ruleset.match(session, envelope);
  const from = session.local ? 'the local socket' : session.address;
  console.log(`${what} (${from}, ${envelope.mailFrom} -> ${envelope.rcptTo})`);
  if (explain) {
    for (const t of trace) {
      const result = t.result === 'error' ? 'cannot be answered' : t.result ? 'holds' : 'fails';
      console.log(`    rule ${t.rule}: ${t.criterion} ${result}`);
    }
  }
  if ('reject' in decision) {
    const { rule, number, reason, reply } = decision.reject;
    console.log(rule && number ? `  rule ${number}: ${formatStatement(rule)}` : `  ${reason}`);
    console.log(`  ${reply}\n`);
  } else {
    console.log(`  rule ${decision.number}: ${formatStatement(decision.rule)}\n`);
  }
}
