/**
 * Expansion against what a local user or a table author might write on
 * purpose: targets the queue cannot hold, a session-closing reply in a
 * ~/.forward, included files that cost more than they list, odd
 * delimiters and duplicates. Most cases are ones a first version got
 * wrong, and the comment above them says what it did; the others pin a
 * behaviour, ours or 6.8's.
 */
import { describe, expect, it } from 'vitest';
import { MAX_INCLUDED_TARGETS } from '../../src/expand/failure.ts';
import { MAX_INCLUDE_SIZE, readIncludeFile } from '../../src/expand/target-files.ts';
import { DELIVERY_LIMITS } from '../../src/queue/envelope-format.ts';
import { expand, isRoot, testHost, type Host } from './helpers.ts';

const host = testHost();

/** smtpd.conf with `action "local"` as given, its aliases in $D/aliases. */
function conf(h: Host, local: string): string {
  return `table aliases file:${h.dir}/aliases
action "local" ${local}
match from any for domain example.org action "local"
`;
}

const EVERYTHING = 'mbox alias <aliases> allow-exec forward-file allow-exec';
const TEMP = (rcpt: string, log: string) => `tempfail 424 4.2.4 Mailing list expansion problem: <${rcpt}> | ${log}`;

describe('a target the queue could not hold is refused at RCPT, for that recipient alone', () => {
  // Before: each was accepted with 250, and the queue refused the envelope at the commit
  // ("invalid delivery"), so the client heard 421 after DATA, for the whole message and
  // every co-recipient, at every retry.
  it.skipIf(!isRoot).each([
    ['a TAB in a command', '"|/usr/bin/procmail\t-d bob"', '"\\"|/usr/bin/procmail\\t-d bob\\""'],
    ['a NUL in a file (6.8, in C, would write to /tmp/x)', '/tmp/x\0y', '"/tmp/x\\u0000y"'],
    ['an ESC in an error reply', 'error:550 5.1.1 gone\x1b[2J', '"error:550 5.1.1 gone\\u001b[2J"'],
  ])('~/.forward: %s', async (_what, line, shown) => {
    const h = host();
    h.write('aliases', '');
    h.forward('bob', `alice\n${line}\n`);
    const { lines } = await expand(h, conf(h, EVERYTHING), 'bob@example.org');
    expect(lines).toEqual([TEMP('bob@example.org',
      `$D/home/bob/.forward line 2: cannot read ${shown} as a target: it has a control character, which no target may hold`)]);
  });

  it('an alias whose command has a TAB', async () => {
    const h = host();
    h.write('aliases', 'tab: "|/bin/echo\tx"\n');
    const { lines } = await expand(h, conf(h, EVERYTHING), 'tab@example.org');
    expect(lines).toEqual([TEMP('tab@example.org',
      'table aliases, key tab: table aliases: bad alias entry for "tab": "\\"|/bin/echo\\tx\\"" has a control character, which no target may hold')]);
  });

  it(`an alias whose command is longer than ${DELIVERY_LIMITS.target} characters`, async () => {
    const h = host();
    const command = `/bin/echo ${'a'.repeat(DELIVERY_LIMITS.target)}`;
    h.write('aliases', `long: "|${command}"\nfits: "|${command.slice(0, DELIVERY_LIMITS.target)}"\n`);
    const { lines } = await expand(h, conf(h, EVERYTHING), 'long@example.org');
    expect(lines).toEqual([TEMP('long@example.org',
      `table aliases, key long: command target of ${command.length} characters, longer than the ${DELIVERY_LIMITS.target} an envelope holds`)]);
    const fits = await expand(h, conf(h, EVERYTHING), 'fits@example.org');
    expect(fits.expansion.result).toBe('ok');
  });

  it('an included file whose path is long: the envelope keeps the start of its origin', async () => {
    const h = host();
    const path = h.write(`${'d'.repeat(200)}/${'e'.repeat(200)}/${'f'.repeat(200)}/${'g'.repeat(200)}/${'h'.repeat(200)}.list`, '"|/bin/true"\n');
    h.write('aliases', `inc: :include:${path}\n`);
    const asRoot = { readInclude: async (p: string) => ({ ...(await readIncludeFile(p)), uid: 0, mode: 0o100644 }) };
    const { expansion } = await expand(h, conf(h, EVERYTHING), 'inc@example.org', undefined, asRoot);
    const where = expansion.result === 'ok' ? expansion.recipients[0]?.delivery?.source?.where : undefined;
    expect(where?.length).toBe(DELIVERY_LIMITS.where);
    expect(where).toMatch(/^\/.*\.\.\.$/);
  });
});

describe('error:421, which closes the session, only from the administrator', () => {
  // Before: a user's `error:421` was answered 421 and the session closed, so every recipient
  // after the user in the same transaction (a list, a colleague) waited with them.
  it.skipIf(!isRoot)('in a ~/.forward it is answered as 450, with its text', async () => {
    const h = host();
    h.write('aliases', '');
    h.forward('bob', 'error:421 4.2.1 not today\n');
    const { lines } = await expand(h, conf(h, 'mbox forward-file'), 'bob@example.org');
    expect(lines).toEqual(['tempfail 450 4.2.1 not today: <bob@example.org> | $D/home/bob/.forward line 1: '
      + "error target: 421 4.2.1 not today (answered as 450: a user's file may not close the session)"]);
  });

  it.each([
    ['owned by a user', 450, 1000, 0o644],
    ['writable by its group', 450, 0, 0o664],
    ['that only root can change', 421, 0, 0o644],
  ])('in an included file %s, it is answered %s', async (_what, code, uid, mode) => {
    const h = host();
    const list = h.write('bye.list', 'error:421 bye\n');
    h.write('aliases', `bye: :include:${list}\n`);
    const asIf = { readInclude: async (p: string) => ({ ...(await readIncludeFile(p)), uid, mode: 0o100000 | mode }) };
    const { expansion } = await expand(h, conf(h, 'mbox alias <aliases>'), 'bye@example.org', undefined, asIf);
    expect(expansion).toMatchObject({ result: 'tempfail', code, reply: `${code} bye: <bye@example.org>` });
  });

  it('in an alias it stays 421', async () => {
    const h = host();
    h.write('aliases', 'bye: error:421 bye\n');
    const { expansion } = await expand(h, conf(h, 'mbox alias <aliases>'), 'bye@example.org');
    expect(expansion).toMatchObject({ result: 'tempfail', code: 421, reply: '421 bye: <bye@example.org>' });
  });
});

describe(':include: files: what one RCPT may read', () => {
  const asRoot = { readInclude: async (p: string) => ({ ...(await readIncludeFile(p)), uid: 0, mode: 0o100644 }) };

  // Before: duplicates were read, compared and dropped without counting, so a megabyte of
  // one name was accepted, after more than half a second of the lookup process per RCPT.
  it(`a list of one name repeated: more than ${MAX_INCLUDED_TARGETS} targets read is too large`, async () => {
    const h = host();
    const list = h.write('same.list', 'bob\n'.repeat(Math.floor((MAX_INCLUDE_SIZE - 1) / 4)));
    h.write('aliases', `same: :include:${list}\n`);
    const { lines } = await expand(h, conf(h, 'mbox alias <aliases>'), 'same@example.org', undefined, asRoot);
    expect(lines).toEqual([`permfail 524 5.2.4 Mailing list expansion problem: <same@example.org> | $D/same.list line ${MAX_INCLUDED_TARGETS + 1}, `
      + `included from table aliases, key same: more than ${MAX_INCLUDED_TARGETS} targets read from :include: files in one expansion`]);
  });

  // Before: each path was read whole, however many times the entry named the file.
  it(`one file named twice, by two paths: more than ${MAX_INCLUDE_SIZE} bytes read is too large`, async () => {
    const h = host();
    const list = h.write('long.list', `# ${'x'.repeat(MAX_INCLUDE_SIZE / 2)}\nbob\n`);
    h.write('aliases', `twice: :include:${list}, :include:/${list}\n`);
    const { lines } = await expand(h, conf(h, 'mbox alias <aliases>'), 'twice@example.org', undefined, asRoot);
    expect(lines).toEqual([`permfail 524 5.2.4 Mailing list expansion problem: <twice@example.org> | table aliases, key twice: `
      + `/$D/long.list: more than ${MAX_INCLUDE_SIZE} bytes of :include: files in one expansion`]);
  });

  it(`a list of ${MAX_INCLUDED_TARGETS - 2} names, with comments, fits`, async () => {
    const h = host();
    const names = Array.from({ length: MAX_INCLUDED_TARGETS - 2 }, (_, i) => `# member ${i}\nm${i}@gmail.com`);
    const list = h.write('members.list', `${names.join('\n')}\n`);
    h.write('aliases', `members: :include:${list}\n`);
    const local = 'action "relay" relay\nmatch from local for any action "relay"\n';
    const { expansion } = await expand(h, conf(h, 'mbox alias <aliases>') + local, 'members@example.org', undefined, asRoot);
    expect(expansion.result === 'ok' && expansion.recipients.length).toBe(MAX_INCLUDED_TARGETS - 2);
  });
});

describe('a user that does not exist, named by a table or a file', () => {
  // Before: the log said `user jonh: not in the system accounts`, and not which line named jonh.
  it.skipIf(!isRoot)('the log names the ~/.forward line', async () => {
    const h = host();
    h.write('aliases', '');
    h.forward('bob', '\\bob\njonh\n');
    const { lines } = await expand(h, conf(h, 'mbox forward-file'), 'bob@example.org');
    expect(lines).toEqual(['permfail 550 Invalid recipient: <bob@example.org> | $D/home/bob/.forward line 2: user jonh: not in the system accounts']);
  });

  it('the log names the included file and line, and the entry that included it', async () => {
    const h = host();
    const list = h.write('team.list', 'bob\nalice\njonh\n');
    h.write('aliases', `team: :include:${list}\n`);
    const { lines } = await expand(h, conf(h, 'mbox alias <aliases>'), 'team@example.org');
    expect(lines).toEqual(['permfail 550 Invalid recipient: <team@example.org> | '
      + '$D/team.list line 3, included from table aliases, key team: user jonh: not in the system accounts']);
  });
});

describe('the sub-address delimiter', () => {
  // Before: the tag was cut one UTF-16 unit after the delimiter, so a delimiter outside the
  // BMP left half of itself, a lone surrogate, at the start of the sub-address.
  it('one character that is two UTF-16 units: the tag is what follows it', async () => {
    const h = host();
    h.write('aliases', '');
    const text = `smtp sub-addr-delim "\u{1F600}"\n${conf(h, 'mbox')}`;
    const { lines } = await expand(h, text, 'bob\u{1F600}lists@example.org');
    expect(lines).toEqual(['bob\u{1F600}lists@example.org -> local: mailbox bob +lists']);
  });

  it.each([
    ['first', '+bob@example.org', 'permfail 550 Invalid recipient: <+bob@example.org> | user : not in the system accounts'],
    ['last', 'bob+@example.org', 'bob+@example.org -> local: mailbox bob'],
    ['twice', 'bob+a+b@example.org', 'bob+a+b@example.org -> local: mailbox bob +a+b'],
  ])('%s: cut at the first, as 6.8 cuts', async (_where, rcpt, line) => {
    const h = host();
    h.write('aliases', '');
    const { lines } = await expand(h, conf(h, 'mbox'), rcpt);
    expect(lines).toEqual([line]);
  });
});

describe('duplicates', () => {
  // A departure from 6.8, which compares addresses byte for byte and makes two envelopes.
  it('two addresses that differ only in case are one delivery, the first', async () => {
    const h = host();
    h.write('aliases', 'pair: Carol@gmail.com, carol@gmail.com, CAROL@GMAIL.COM\n');
    const relay = 'action "relay" relay\nmatch from local for any action "relay"\n';
    const { lines } = await expand(h, conf(h, 'mbox alias <aliases>') + relay, 'pair@example.org');
    expect(lines).toEqual(['Carol@gmail.com -> relay']);
  });

  it('a user named twice, by name and by address, in two cases: one delivery', async () => {
    const h = host();
    h.write('aliases', 'pair: Bob, bob@EXAMPLE.org, BOB@example.org\n');
    const { lines } = await expand(h, conf(h, 'mbox alias <aliases>'), 'pair@example.org');
    expect(lines).toEqual(['pair@example.org -> local: mailbox bob [alias: table aliases, key pair]']);
  });
});
