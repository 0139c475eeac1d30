// What a stranger's address becomes on an mda command line. Each sender is
// read by the SMTP engine's own parser, as MAIL FROM would read it; then
// the mda command of an action is filled in for a delivery to bob.
import { parsePath } from '@saf/impl/smtp';
// The format specifiers, from the implementation's source.
import { expandFormat, FormatError, type FormatValues } from '../../../impl/src/delivery/index.ts';

const mda = '/usr/local/bin/deliver -f %{sender} -- %{rcpt.user}';
const raw = '/usr/local/bin/deliver -f %{sender:raw}';
const maildir = '~/Maildir/%{rcpt.user}';
const senders = ['<ann%relay@example.com>', '<;sleep 66;>', '<`reboot`@evil.example>', '<"; rm -rf ~ #"@evil.example>'];

for (const path of senders) {
  const read = parsePath(path, { nullAllowed: true, utf8: false, localDomain: 'mx.example.org' });
  console.log(`MAIL FROM:${path}`);
  if (!read.ok) {
    console.log(`  refused by the SMTP parser: ${read.reason}\n`);
    continue;
  }
  const values: FormatValues = {
    sender: read.address,
    rcpt: { user: 'bob', domain: 'example.org' },
    dest: { user: 'bob', domain: 'example.org' },
    user: { username: 'bob', directory: '/home/bob' },
  };
  console.log(`  ${expandFormat(mda, values, 'command')}`);
  console.log(`  ${expandFormat(raw, values, 'command')}\n`);
}

// A recipient's local part in a maildir path: it may not leave the directory.
for (const user of ['bob', 'a/b', '..']) {
  const values: FormatValues = {
    sender: null,
    rcpt: { user, domain: 'example.org' },
    dest: { user: 'bob', domain: 'example.org' },
    user: { username: 'bob', directory: '/home/bob' },
  };
  try {
    console.log(`maildir for rcpt.user ${JSON.stringify(user)}: ${expandFormat(maildir, values, 'path')}`);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    console.log(`maildir for rcpt.user ${JSON.stringify(user)}: refused (${err.kind}): ${err.message}`);
  }
}
