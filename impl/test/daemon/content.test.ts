/**
 * Hostile message content through the whole daemon: each message goes in
 * over SMTP as raw bytes and out to a Maildir, an mbox (/var/mail, in a
 * mount namespace of its own as in mbox-spool.test.ts), an `mda` command
 * (`cat > FILE`) and Dovecot over LMTP, and what each wrote is compared
 * byte for byte with what the client sent, in Unix line ends, under the
 * delivery headers and our Received: field. Python's mailbox module reads
 * the Maildir and the mbox; the bounces of a fifth recipient, whose mda
 * fails for good, are read by Python's email module.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { haveDovecot, startDovecot, stopDovecot } from './dovecot.ts';
import { canMountVarMail, cleanUpAfterEach, debianMailSpool, freePort, startDaemonWithVarMail, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const NOBODY = 65534;
const MAX_SIZE = 100_000;
let dovecot: ChildProcess | undefined;
afterEach(async () => {
  await stopDovecot(dovecot);
  dovecot = undefined;
});

/** Sends each step after the previous reply (the greeting first); resolves with every reply. */
function converse(port: number, steps: (string | Buffer)[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    const replies: string[] = [];
    socket.on('data', (data) => {
      buffer += data.toString('latin1');
      for (let m; (m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buffer));) {
        buffer = buffer.slice(m[0].length);
        replies.push(m[0].trim());
        const next = steps[replies.length - 1];
        if (next === undefined) return socket.end(), resolve(replies);
        socket.write(next);
      }
    });
    socket.on('error', reject);
  });
}

const b = (text: string) => Buffer.from(text, 'latin1');

/** A message of exactly `size` octets as stored (CRLF counted, the stuffed dot not), with a dot-stuffed line. */
function sized(size: number): Buffer {
  const head = 'Subject: sized\r\n\r\n..x\r\n';
  const line = `${'y'.repeat(998)}\r\n`;
  let body = line.repeat(Math.floor((size - head.length + 1) / line.length));
  body += `${'z'.repeat(size - head.length + 1 - body.length - 2)}\r\n`;
  return b(head + body);
}

/**
 * What the client sends after DATA (before the final `.\r\n`), and what a
 * reader must find below the Received: field, in Unix line ends.
 */
const CASES: Record<string, { sent: Buffer; stored: Buffer }> = {
  barelf: { sent: b('Subject: barelf\r\n\r\na\nb\r\n.\nc\n.\r\nd\r\n'), stored: b('Subject: barelf\n\na\nb\n.\nc\n.\nd\n') },
  // OpenSMTPD drops one CR before an LF and keeps any other CR.
  barecr: { sent: b('Subject: barecr\r\nX-CR: a\rb\r\n\r\na\rb\r\nend\r\r\n\r\r\nlast\r\n'), stored: b('Subject: barecr\nX-CR: a\rb\n\na\rb\nend\r\n\r\nlast\n') },
  dots: { sent: b('Subject: dots\r\n\r\n..\r\n..x\r\n...\r\n'), stored: b('Subject: dots\n\n.\n.x\n..\n') },
  long: {
    sent: b(`Subject: long\r\n\r\n${'a'.repeat(998)}\r\n${'b'.repeat(999)}\r\n${'c'.repeat(5000)}\r\n`),
    stored: b(`Subject: long\n\n${'a'.repeat(998)}\n${'b'.repeat(999)}\n${'c'.repeat(5000)}\n`),
  },
  from: { sent: b('Subject: from\r\n\r\nFrom me\r\n>From you\r\n>>From them\r\nFrom\r\n'), stored: b('Subject: from\n\nFrom me\n>From you\n>>From them\nFrom\n') },
  firstbody: { sent: b('Subject: firstbody\r\n\r\nFrom the start\r\n'), stored: b('Subject: firstbody\n\nFrom the start\n') },
  utf8: {
    sent: Buffer.from('Subject: h\u00e9llo \u2713\r\nFrom: J\u00f6s\u00e9 <j@example.net>\r\n\r\n\u00e9t\u00e9\r\n', 'utf8'),
    stored: Buffer.from('Subject: h\u00e9llo \u2713\nFrom: J\u00f6s\u00e9 <j@example.net>\n\n\u00e9t\u00e9\n', 'utf8'),
  },
  latin1: { sent: b('Subject: caf\xe9\r\n\r\ncaf\xe9\r\n'), stored: b('Subject: caf\xe9\n\ncaf\xe9\n') },
  headersonly: { sent: b('Subject: headersonly\r\n'), stored: b('Subject: headersonly\n') },
  emptybody: { sent: b('Subject: emptybody\r\n\r\n'), stored: b('Subject: emptybody\n\n') },
  empty: { sent: b(''), stored: b('') },
  bighdr: {
    sent: b(`Subject: bighdr\r\n${Array.from({ length: 800 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(80)}\r\n`).join('')}\r\nbody\r\n`),
    stored: b(`Subject: bighdr\n${Array.from({ length: 800 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(80)}\n`).join('')}\nbody\n`),
  },
  folded: { sent: b('Subject: folded\r\n more\r\n\tand more\r\n\r\nbody\r\n'), stored: b('Subject: folded\n more\n\tand more\n\nbody\n') },
  // The header section ends at the first line that is not a field: the blank line the sender left out is stored.
  nothdr: { sent: b('hello world\r\nSubject: nothdr\r\n\r\nbody\r\n'), stored: b('\nhello world\nSubject: nothdr\n\nbody\n') },
  fromhdr: { sent: b('Subject: fromhdr\r\nFrom nobody Thu\r\n\r\nbody\r\n'), stored: b('Subject: fromhdr\n\nFrom nobody Thu\n\nbody\n') },
  // max-message-size counts octets as RFC 1870 does: CRLF as two, the stuffed dot not, our Received: not.
  atlimit: { sent: sized(MAX_SIZE), stored: Buffer.from(sized(MAX_SIZE).toString('latin1').replace(/\r\n/g, '\n').replace('\n..x', '\n.x'), 'latin1') },
};

const DOMAINS = ['md', 'mb', 'mda', 'lmtp', 'fail'] as const;

/** Python's mailbox module: each message's bytes, as a reader gets them (an mbox's without its separator). */
function readBox(kind: 'Maildir' | 'mbox', path: string): Buffer[] {
  const script = `
import base64, json, mailbox, sys
box = getattr(mailbox, sys.argv[1])(sys.argv[2], create=False)
print(json.dumps([base64.b64encode(box.get_bytes(k)).decode() for k in box.keys()]))
`;
  return (JSON.parse(execFileSync('python3', ['-c', script, kind, path], { encoding: 'utf8' })) as string[]).map((s) => Buffer.from(s, 'base64'));
}

/** The header fields a delivery put on top: Return-Path, Delivered-To, Received: (with its continuation lines). */
function below(message: Buffer, fields: number): Buffer {
  let at = 0;
  for (let n = 0; n < fields;) {
    at = message.indexOf(0x0a, at) + 1;
    if (message[at] !== 0x09 && message[at] !== 0x20) n++;
  }
  return message.subarray(at);
}

/** Python's email module reads each bounce: who it is about, and what its third part holds. */
function readBounces(maildir: string): Record<string, { parts: string[]; third: string; encoding: string; subject: string | null; defects: number }> {
  const script = `
import email, glob, json, sys
from email import policy
out = {}
for path in glob.glob(sys.argv[1] + '/new/*'):
    m = email.message_from_binary_file(open(path, 'rb'), policy=policy.default)
    parts = m.get_payload()
    rcpt = parts[1].get_payload()[1]['Final-Recipient'].split(';')[1].strip()
    third = parts[2]
    inner = third.get_payload()[0] if third.get_content_type() == 'message/rfc822' else email.message_from_bytes(third.get_payload(decode=True))
    out[rcpt.split('@')[0]] = {'parts': [p.get_content_type() for p in parts], 'third': third.get_content_type(),
        'encoding': third['Content-Transfer-Encoding'], 'subject': inner['Subject'], 'defects': len(m.defects) + len(inner.defects)}
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, maildir], { encoding: 'utf8' })) as never;
}

describe.runIf(canMountVarMail && haveDovecot)('message content, SMTP in, delivered out', { timeout: 120_000 }, () => {
  it('reaches a Maildir, an mbox, an mda and Dovecot as sent, and bounces readably', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    const mail = debianMailSpool(dir);
    for (const sub of ['md', 'out']) {
      mkdirSync(join(dir, sub));
      chmodSync(join(dir, sub), 0o1777);
    }
    const started = await startDovecot(join(dir, 'dovecot'));
    dovecot = started.proc;
    const users = [...Object.keys(CASES), 'sender', 'over', 'nul'];
    writeFileSync(join(dir, 'users'), users.map((u) => `${u} ${NOBODY}:${NOBODY}:${dir}/out\n`).join(''));
    writeFileSync(conf, [
      `table users file:${dir}/users`,
      `smtp max-message-size ${MAX_SIZE}`,
      `listen on 127.0.0.1 port ${port}`,
      `action "md" maildir "${dir}/md/%{user.username}" userbase <users>`,
      'action "mb" mbox userbase <users>',
      `action "mda" mda "cat > ${dir}/out/mda-%{user.username}" userbase <users>`,
      `action "lmtp" lmtp "127.0.0.1:${started.port}" rcpt-to userbase <users>`,
      'action "fail" mda "cat > /dev/null; exit 67" userbase <users>',
      ...DOMAINS.map((d) => `match from any for domain "${d}.example" action "${d}"`),
      '',
    ].join('\n'));
    const daemon = startDaemonWithVarMail(['-d', '-v', '-f', conf, '--spool', spool], mail);
    running.push(daemon);
    await daemon.waitFor(/processes started/);

    const transaction = (user: string, content: Buffer) => converse(port, [
      'EHLO client.example.org\r\n', 'MAIL FROM:<sender@md.example> SMTPUTF8\r\n',
      ...DOMAINS.map((d) => `RCPT TO:<${user}@${d}.example>\r\n`), 'DATA\r\n', Buffer.concat([content, b('.\r\n')]), 'QUIT\r\n',
    ]);
    for (const [user, { sent }] of Object.entries(CASES)) {
      expect((await transaction(user, sent)).at(-2), user).toMatch(/^250 2\.0\.0 \w+ Message accepted/);
    }
    // One octet over the limit is refused; a NUL is refused, where OpenSMTPD 6.8 cut the line at it.
    expect((await transaction('over', sized(MAX_SIZE + 1))).at(-2)).toBe('552 5.3.4 Message too big for system: Transaction failed, message too big');
    expect((await transaction('nul', b('Subject: nul\r\n\r\na\0b\r\n'))).at(-2)).toBe('554 5.6.0 Other/Undefined media error: Message contains NUL characters');

    const cases = Object.keys(CASES).length;
    const deadline = Date.now() + 60_000;
    const done = () => daemon.lines.filter((l) => / mda delivery .*result=(Ok|PermFail)/.test(l)).length;
    while (done() < cases * DOMAINS.length + cases && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(daemon.lines.filter((l) => / mda delivery .*result=(?!Ok)/.test(l) && !/@fail\.example>/.test(l))).toEqual([]);

    for (const [user, { stored }] of Object.entries(CASES)) {
      const [maildir] = readBox('Maildir', join(dir, 'md', user));
      const [mbox] = readBox('mbox', join(mail, user));
      const mda = readFileSync(join(dir, 'out', `mda-${user}`));
      const lmtpDir = join(dir, 'dovecot', 'home', user, 'Maildir', 'new');
      const lmtp = readFileSync(join(lmtpDir, readdirSync(lmtpDir)[0]!));
      expect(maildir!.toString('latin1'), user).toMatch(new RegExp(`^Return-Path: <sender@md\\.example>\\nDelivered-To: ${user}@md\\.example\\nReceived: from client\\.example\\.org `));
      expect(below(maildir!, 3).toString('latin1'), `${user} in a Maildir`).toBe(stored.toString('latin1'));
      expect(below(mda, 3).toString('latin1'), `${user} to an mda`).toBe(stored.toString('latin1'));
      // Dovecot puts its own three fields above ours.
      expect(below(lmtp, 6).toString('latin1'), `${user} to Dovecot`).toBe(stored.toString('latin1'));
      // mboxo: a line that starts with `From ` gets a `>`, and no other line does.
      expect(below(mbox!, 3).toString('latin1'), `${user} in an mbox`).toBe(stored.toString('latin1').replace(/^From /gm, '>From '));
    }
    expect(readBox('mbox', join(mail, 'from'))[0]!.toString()).toMatch(/\n\n>From me\n>From you\n>>From them\nFrom\n$/);

    const bounces = readBounces(join(dir, 'md', 'sender'));
    expect(Object.keys(bounces).sort()).toEqual(Object.keys(CASES).sort());
    for (const [user, bounce] of Object.entries(bounces)) {
      expect(bounce.parts, user).toEqual(['text/plain', 'message/delivery-status', bounce.third]);
    }
    // Lines over 998 octets cannot go in message/rfc822: the headers come back instead.
    expect(bounces['long']).toMatchObject({ third: 'text/rfc822-headers', subject: 'long' });
    expect(bounces['utf8']).toMatchObject({ third: 'message/rfc822', encoding: '8bit', subject: 'h\u00e9llo \u2713', defects: 0 });
    expect(bounces['latin1']).toMatchObject({ third: 'message/rfc822', encoding: '8bit' });
    // A bare CR is allowed in neither 7bit nor 8bit: the headers come back, in base64 as they hold one too.
    expect(bounces['barecr']).toMatchObject({ third: 'text/rfc822-headers', encoding: 'base64', subject: 'barecr' });
    expect(bounces['nothdr']).toMatchObject({ third: 'message/rfc822', subject: null, defects: 0 });
    expect(bounces['folded']).toMatchObject({ subject: 'folded more\tand more', defects: 0 });
  });
});
