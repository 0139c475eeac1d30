/**
 * Expansion, one row per case: the action line of a real smtpd.conf, the
 * recipient, and what it expands to (or the reply and log line it fails
 * with). Tables and ~/.forward files are real files in a temporary
 * directory, written `$D` in the expected lines.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MAX_INCLUDE_SIZE, readIncludeFile } from '../../src/expand/target-files.ts';
import { Ruleset } from '../../src/lookup/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { expand, HOST, isRoot, REMOTE, SOCKET, testHost, type Host, type USERS } from './helpers.ts';

const ALIASES = `
# The aliases of the test host.
root: bob
staff: bob, alice
team: staff, carol@gmail.com, dave@example.org
alice+x: bob
c1: c2
c2: c3
c3: c4
c4: c5
c5: c6
c6: c7
c7: c8
c8: bob
d1: d2
d2: d3
d3: d4
d4: d5
d5: d6
d6: d7
d7: d8
d8: d9
d9: bob
loop1: loop2
loop2: loop1
loopx: loopy, bob
loopy: loopx
dup: bob, bob@example.org, staff
inc: :include:$D/staff.list
archive: /var/mail/archive
pipe: "|/usr/local/bin/notify -q"
mixed: alice, |/usr/bin/logger
gone: error:550 5.1.1 This user has left
later: error:451 Try again later
nobody-here: nosuchuser
incpipe: :include:$D/pipes.list
incmissing: bob, :include:$D/missing.list
bad: joe bloggs
badformat: "|/bin/echo %{nosuch}"
`;

const STAFF_LIST = 'bob\n# the boss reads everything\nalice, carol@gmail.com\n';
const PIPES_LIST = 'dave\n"|/usr/bin/vacation dave"\n';

const VIRTUAL = `
info@virtual.test: bob
sales@virtual.test: alice, carol@gmail.com
bob+lists@virtual.test: alice
owner: dave
help@virtual.test: owner
@virtual.test: dave
`;

const VIRTUAL2 = 'info@strict.test: bob\nrun@strict.test: |/usr/bin/true\n';
const VUSERS = 'vbob 52001:52001:$D/home/bob\nvbroken 52001\n';

/** smtpd.conf with `action "local"` as given; the tables are files in $D. */
function conf(dir: string, local: string, extra = ''): string {
  return `${extra}table aliases file:${dir}/aliases
table vmap file:${dir}/virtual
table vmap2 file:${dir}/virtual2
table vusers file:${dir}/vusers
action "local" ${local}
action "virt" mbox virtual <vmap>
action "strict" mbox virtual <vmap2>
action "relay" relay
match from any for domain example.org action "local"
match from any for domain virtual.test action "virt"
match from any for domain strict.test action "strict"
match from local for any action "relay"
`;
}

function writeTables(host: Host): void {
  const d = (s: string) => s.replaceAll('$D', host.dir);
  host.write('aliases', d(ALIASES));
  host.write('staff.list', STAFF_LIST);
  host.write('pipes.list', PIPES_LIST);
  host.write('virtual', VIRTUAL);
  host.write('virtual2', VIRTUAL2);
  host.write('vusers', d(VUSERS));
}

interface Row {
  name: string;
  /** What follows `action "local"`. */
  local: string;
  rcpt: string;
  /** Global options written before the tables. */
  extra?: string;
  forwards?: Partial<Record<keyof typeof USERS, string>>;
  local_session?: boolean;
  expect: string[];
  /** Warnings the expander logs. */
  warnings?: string[];
}

const host = testHost();

/** One test per row; `needsRoot` for rows whose files must be owned by a user. */
function run(rows: Row[], needsRoot = false): void {
  (needsRoot ? it.skipIf(!isRoot) : it).each(rows)('$name', async (row) => {
    const h = host();
    writeTables(h);
    for (const [user, text] of Object.entries(row.forwards ?? {})) h.forward(user as keyof typeof USERS, text);
    const outcome = await expand(h, conf(h.dir, row.local, row.extra), row.rcpt, row.local_session ? SOCKET : REMOTE);
    expect(outcome.lines).toEqual(row.expect);
    if (row.warnings) expect(outcome.warnings.map((w) => w.replaceAll(h.dir, '$D'))).toEqual(row.warnings);
  });
}

const INVALID = (rcpt: string, log: string) => `permfail 550 Invalid recipient: <${rcpt}> | ${log}`;
const EXPANSION = (rcpt: string, log: string) => `permfail 524 5.2.4 Mailing list expansion problem: <${rcpt}> | ${log}`;
const REFUSED = (rcpt: string, log: string) => `tempfail 451 4.7.0 Recipient expansion refused by local policy: <${rcpt}> | ${log}`;

describe('local users', () => {
  run([
    { name: 'a plain user', local: 'mbox', rcpt: 'bob@example.org', expect: ['bob@example.org -> local: mailbox bob'] },
    { name: 'a user in capitals', local: 'mbox', rcpt: 'BOB@Example.ORG', expect: ['BOB@Example.ORG -> local: mailbox bob'] },
    {
      name: 'an unknown user',
      local: 'mbox',
      rcpt: 'nosuch@example.org',
      expect: [INVALID('nosuch@example.org', 'user nosuch: not in the system accounts')],
    },
    {
      name: 'user+tag: the mailbox of user, with the sub-address',
      local: 'mbox',
      rcpt: 'bob+lists@example.org',
      expect: ['bob+lists@example.org -> local: mailbox bob +lists'],
    },
    {
      name: 'user-tag with sub-addr-delim "-"',
      local: 'mbox',
      extra: 'smtp sub-addr-delim "-"\n',
      rcpt: 'bob-lists@example.org',
      expect: ['bob-lists@example.org -> local: mailbox bob +lists'],
    },
    {
      name: 'a userbase table: its users exist',
      local: 'mbox userbase <vusers>',
      rcpt: 'vbob+x@example.org',
      expect: ['vbob+x@example.org -> local: mailbox vbob +x'],
    },
    {
      name: 'a userbase table that cannot answer: a temporary failure',
      local: 'mbox userbase <vusers>',
      rcpt: 'vbroken@example.org',
      expect: ['tempfail 451 Temporary failure: <vbroken@example.org> | user vbroken: userbase <vusers> could not answer: '
        + 'table vusers: bad userinfo entry for "vbroken": "52001" is not uid:gid:home'],
    },
    {
      name: 'a userbase table: the system accounts do not',
      local: 'mbox userbase <vusers>',
      rcpt: 'bob@example.org',
      expect: [INVALID('bob@example.org', 'user bob: not in userbase <vusers>')],
    },
  ]);
});

describe('rules', () => {
  run([
    {
      name: 'no rule for a stranger relaying: the ruleset\'s reply',
      local: 'mbox',
      rcpt: 'carol@gmail.com',
      expect: [INVALID('carol@gmail.com', '<carol@gmail.com>: no rule matched')],
    },
    { name: 'a relay action: the address as it is', local: 'mbox', rcpt: 'carol@gmail.com', local_session: true, expect: ['carol@gmail.com -> relay'] },
  ]);

  it('rejects with exactly the reply of the lookup role', async () => {
    const h = host();
    writeTables(h);
    const text = conf(h.dir, 'mbox');
    const { config } = parseConfig(text, { file: 'smtpd.conf' });
    const ruleset = Ruleset.fromConfig(config, { localNames: HOST });
    const decision = ruleset.match(REMOTE, { mailFrom: 'sender@example.net', rcptTo: 'carol@gmail.com' });
    ruleset.close();
    const { expansion } = await expand(h, text, 'carol@gmail.com');
    expect('reject' in decision && decision.reject.reply).toBe(expansion.result === 'permfail' && expansion.reply);
    expect(expansion).toMatchObject({ code: 550, enhanced: '' });
  });
});

describe('aliases', () => {
  run([
    {
      name: 'an alias to users',
      local: 'mbox alias <aliases>',
      rcpt: 'staff@example.org',
      expect: [
        'staff@example.org -> local: mailbox bob [alias: table aliases, key staff]',
        'staff@example.org -> local: mailbox alice [alias: table aliases, key staff]',
      ],
    },
    {
      name: 'an alias to an alias, an address to relay and a local address',
      local: 'mbox alias <aliases>',
      rcpt: 'team@example.org',
      expect: [
        'carol@gmail.com -> relay',
        'team@example.org -> local: mailbox bob [alias: table aliases, key staff]',
        'team@example.org -> local: mailbox alice [alias: table aliases, key staff]',
        'dave@example.org -> local: mailbox dave [alias: table aliases, key team]',
      ],
    },
    {
      name: 'a chain of 8 aliases: the user is at depth 9',
      local: 'mbox alias <aliases>',
      rcpt: 'c1@example.org',
      expect: ['c1@example.org -> local: mailbox bob [alias: table aliases, key c8]'],
    },
    {
      name: 'a chain of 9 aliases: depth 10 is too deep',
      local: 'mbox alias <aliases>',
      rcpt: 'd1@example.org',
      expect: [EXPANSION('d1@example.org', 'table aliases, key d9: username:bob: expansion deeper than 10 levels')],
    },
    {
      name: 'an alias loop delivers to no one',
      local: 'mbox alias <aliases>',
      rcpt: 'loop1@example.org',
      expect: [EXPANSION('loop1@example.org', '<loop1@example.org>: expanded to no delivery at all')],
    },
    {
      name: 'a loop with a way out',
      local: 'mbox alias <aliases>',
      rcpt: 'loopx@example.org',
      expect: ['loopx@example.org -> local: mailbox bob [alias: table aliases, key loopx]'],
    },
    {
      name: 'duplicates are delivered once',
      local: 'mbox alias <aliases>',
      rcpt: 'dup@example.org',
      expect: [
        'dup@example.org -> local: mailbox bob [alias: table aliases, key dup]',
        'dup@example.org -> local: mailbox alice [alias: table aliases, key staff]',
      ],
    },
    {
      name: 'user+tag with an alias for it',
      local: 'mbox alias <aliases>',
      rcpt: 'alice+x@example.org',
      expect: ['alice+x@example.org -> local: mailbox bob [alias: table aliases, key alice+x]'],
    },
    {
      name: 'user+tag of an alias: the alias without its tag',
      local: 'mbox alias <aliases>',
      rcpt: 'root+cron@example.org',
      expect: ['root+cron@example.org -> local: mailbox bob [alias: table aliases, key root]'],
    },
    {
      name: 'user+tag of a user without alias: the mailbox, with the sub-address',
      local: 'mbox alias <aliases>',
      rcpt: 'alice+y@example.org',
      expect: ['alice+y@example.org -> local: mailbox alice +y'],
    },
    {
      name: 'an alias to an unknown user',
      local: 'mbox alias <aliases>',
      rcpt: 'nobody-here@example.org',
      expect: [INVALID('nobody-here@example.org', 'table aliases, key nobody-here: user nosuchuser: not in the system accounts')],
    },
    {
      name: ':include: reads more targets',
      local: 'mbox alias <aliases>',
      rcpt: 'inc@example.org',
      expect: [
        'inc@example.org -> local: mailbox bob [alias: $D/staff.list line 1, included from table aliases, key inc]',
        'inc@example.org -> local: mailbox alice [alias: $D/staff.list line 3, included from table aliases, key inc]',
        'carol@gmail.com -> relay',
      ],
    },
    {
      name: 'an include file that cannot be read: a temporary failure, not a silent loss',
      local: 'mbox alias <aliases>',
      rcpt: 'incmissing@example.org',
      expect: ['tempfail 424 4.2.4 Mailing list expansion problem: <incmissing@example.org> | table aliases, key incmissing: '
        + "cannot read $D/missing.list: ENOENT: no such file or directory, open '$D/missing.list'"],
    },
    {
      name: 'a malformed alias entry: a temporary failure',
      local: 'mbox alias <aliases>',
      rcpt: 'bad@example.org',
      expect: ['tempfail 424 4.2.4 Mailing list expansion problem: <bad@example.org> | table aliases, key bad: table aliases: '
        + 'bad alias entry for "bad": "joe bloggs" is not a user, an address, a /file, a |command, :include:/file or error:code message'],
    },
    {
      name: 'error:5xx is that permanent reply',
      local: 'mbox alias <aliases>',
      rcpt: 'gone@example.org',
      expect: ['permfail 550 5.1.1 This user has left: <gone@example.org> | table aliases, key gone: error target: 550 5.1.1 This user has left'],
    },
    {
      name: 'error:4xx is that temporary reply',
      local: 'mbox alias <aliases>',
      rcpt: 'later@example.org',
      expect: ['tempfail 451 Try again later: <later@example.org> | table aliases, key later: error target: 451 Try again later'],
    },
  ]);
});

describe('files and commands in aliases', () => {
  run([
    {
      name: 'a /file without allow-exec',
      local: 'mbox alias <aliases>',
      rcpt: 'archive@example.org',
      expect: [REFUSED('archive@example.org', 'table aliases, key archive: file target refused: action "local" has no alias <aliases> allow-exec')],
    },
    {
      name: 'a /file with allow-exec, as _smtpd',
      local: 'mbox alias <aliases> allow-exec',
      rcpt: 'archive@example.org',
      expect: ['archive@example.org -> local: file "/var/mail/archive" as _smtpd [alias: table aliases, key archive]'],
      warnings: [],
    },
    {
      name: 'a |command without allow-exec refuses the whole RCPT',
      local: 'mbox alias <aliases>',
      rcpt: 'mixed@example.org',
      expect: [REFUSED('mixed@example.org', 'table aliases, key mixed: command target refused: action "local" has no alias <aliases> allow-exec')],
    },
    {
      name: 'a |command with allow-exec runs as _smtpd, with a warning',
      local: 'mbox alias <aliases> allow-exec',
      rcpt: 'pipe@example.org',
      expect: ['pipe@example.org -> local: command "/usr/local/bin/notify -q" as _smtpd [alias: table aliases, key pipe]'],
      warnings: ['warn: table aliases, key pipe: commands executed from aliases run with _smtpd privileges'],
    },
    {
      name: 'a |command with allow-exec runs as the action\'s user',
      local: 'maildir alias <aliases> allow-exec user vmail',
      rcpt: 'pipe@example.org',
      expect: ['pipe@example.org -> local: command "/usr/local/bin/notify -q" as vmail [alias: table aliases, key pipe]'],
      warnings: [],
    },
    {
      name: 'a |command in an included file: the log names the file and line',
      local: 'mbox alias <aliases>',
      rcpt: 'incpipe@example.org',
      expect: [REFUSED('incpipe@example.org',
        '$D/pipes.list line 2, included from table aliases, key incpipe: command target refused: action "local" has no alias <aliases> allow-exec')],
    },
    {
      name: 'allow-exec on the alias table does not carry to a virtual table',
      local: 'mbox alias <aliases> allow-exec',
      rcpt: 'run@strict.test',
      expect: [REFUSED('run@strict.test', 'table vmap2, key run@strict.test: command target refused: action "strict" has no virtual <vmap2> allow-exec')],
    },
  ]);
});

describe('virtual', () => {
  run([
    {
      name: 'a virtual address to a user',
      local: 'mbox',
      rcpt: 'info@virtual.test',
      expect: ['info@virtual.test -> virt: mailbox bob [virtual: table vmap, key info@virtual.test]'],
    },
    {
      name: 'a virtual address to a user and a remote address',
      local: 'mbox',
      rcpt: 'sales@virtual.test',
      expect: ['sales@virtual.test -> virt: mailbox alice [virtual: table vmap, key sales@virtual.test]', 'carol@gmail.com -> relay'],
    },
    {
      name: 'user+tag with a virtual entry for it',
      local: 'mbox',
      rcpt: 'bob+lists@virtual.test',
      expect: ['bob+lists@virtual.test -> virt: mailbox alice [virtual: table vmap, key bob+lists@virtual.test]'],
    },
    {
      name: 'user+tag without one: the entry of user (the tag stays in the recipient only)',
      local: 'mbox',
      rcpt: 'info+news@virtual.test',
      expect: ['info+news@virtual.test -> virt: mailbox bob [virtual: table vmap, key info@virtual.test]'],
    },
    {
      name: 'a user a virtual entry names is looked up again, by name',
      local: 'mbox',
      rcpt: 'help@virtual.test',
      expect: ['help@virtual.test -> virt: mailbox dave [virtual: table vmap, key owner]'],
    },
    {
      name: 'the catch-all',
      local: 'mbox',
      rcpt: 'whoever@virtual.test',
      expect: ['whoever@virtual.test -> virt: mailbox dave [virtual: table vmap, key @virtual.test]'],
    },
    {
      name: 'no entry and no catch-all',
      local: 'mbox',
      rcpt: 'whoever@strict.test',
      expect: [EXPANSION('whoever@strict.test', '<whoever@strict.test>: no entry in virtual table vmap2')],
    },
  ]);
});

describe('~/.forward', () => {
  run([
    {
      name: 'forward-file off: the file is ignored',
      local: 'mbox',
      rcpt: 'bob@example.org',
      forwards: { bob: 'alice\n' },
      expect: ['bob@example.org -> local: mailbox bob'],
    },
    {
      name: 'forward-file on: the file is used',
      local: 'mbox forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: '# my mail goes elsewhere\nalice, carol@gmail.com\n' },
      expect: [
        'bob@example.org -> local: mailbox alice [forward: $D/home/bob/.forward line 2]',
        'carol@gmail.com -> relay',
      ],
    },
    {
      name: '\\bob in bob\'s .forward: his own mailbox, not expanded again',
      local: 'mbox alias <aliases> forward-file',
      rcpt: 'root@example.org',
      forwards: { bob: '\\bob\nalice\n' },
      expect: [
        'root@example.org -> local: mailbox bob [forward: $D/home/bob/.forward line 1]',
        'root@example.org -> local: mailbox alice [forward: $D/home/bob/.forward line 2]',
      ],
    },
    {
      name: 'an empty .forward: the mailbox',
      local: 'mbox forward-file',
      rcpt: 'bob+x@example.org',
      forwards: { bob: '# nothing\n\n' },
      expect: ['bob+x@example.org -> local: mailbox bob +x'],
    },
    {
      name: 'a |command without forward-file allow-exec',
      local: 'mbox forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: '# keep a copy\n\\bob\n"|/usr/bin/procmail -d bob"\n' },
      expect: [REFUSED('bob@example.org', '$D/home/bob/.forward line 3: command target refused: action "local" has no forward-file allow-exec')],
    },
    {
      name: 'a |command with forward-file allow-exec runs as bob, not as the action\'s user',
      local: 'maildir alias <aliases> allow-exec forward-file allow-exec user vmail',
      rcpt: 'bob@example.org',
      forwards: { bob: '\\bob\n"|/usr/bin/procmail -d bob"\n' },
      expect: [
        'bob@example.org -> local: mailbox bob [forward: $D/home/bob/.forward line 1]',
        'bob@example.org -> local: command "/usr/bin/procmail -d bob" as bob [forward: $D/home/bob/.forward line 2]',
      ],
      warnings: [],
    },
    {
      name: 'alias allow-exec does not allow a /file in a .forward',
      local: 'mbox alias <aliases> allow-exec forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: '/home/bob/mail.log\n' },
      expect: [REFUSED('bob@example.org', '$D/home/bob/.forward line 1: file target refused: action "local" has no forward-file allow-exec')],
    },
    {
      name: 'forwarding to each other: each mailbox once',
      local: 'mbox forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: 'alice, bob\n', alice: 'bob@example.org, alice\n' },
      expect: [
        'bob@example.org -> local: mailbox bob [forward: $D/home/bob/.forward line 1]',
        'bob@example.org -> local: mailbox alice [forward: $D/home/alice/.forward line 1]',
      ],
    },
    {
      name: 'a line that is not a target',
      local: 'mbox forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: 'alice\nmy friend carol\n' },
      expect: ['tempfail 424 4.2.4 Mailing list expansion problem: <bob@example.org> | $D/home/bob/.forward line 2: cannot read "my friend carol" as a target'],
    },
    {
      name: 'more than 100 targets',
      local: 'mbox forward-file',
      rcpt: 'bob@example.org',
      forwards: { bob: Array.from({ length: 101 }, (_, i) => `u${i}@gmail.com`).join(', ') },
      expect: ['tempfail 424 4.2.4 Mailing list expansion problem: <bob@example.org> | $D/home/bob/.forward: more than 100 targets'],
    },
    {
      name: 'forward-only: no .forward is a temporary failure',
      local: 'forward-only forward-file',
      rcpt: 'carol@example.org',
      expect: ['tempfail 424 4.2.4 Mailing list expansion problem: <carol@example.org> | user carol: no ~/.forward, and action "local" is forward-only'],
    },
    {
      name: 'expand-only: no .forward is a permanent failure',
      local: 'expand-only forward-file',
      rcpt: 'carol@example.org',
      expect: [EXPANSION('carol@example.org', 'user carol: no ~/.forward, and action "local" is expand-only')],
    },
  ], true);

  it.skipIf(!isRoot)('a group-writable .forward is a temporary failure naming the reason', async () => {
    const h = host();
    writeTables(h);
    const path = h.forward('bob', 'alice\n');
    const { chmodSync } = await import('node:fs');
    chmodSync(path, 0o664);
    const { lines } = await expand(h, conf(h.dir, 'mbox forward-file'), 'bob@example.org');
    expect(lines).toEqual(['tempfail 424 4.2.4 Mailing list expansion problem: <bob@example.org> | $D/home/bob/.forward: refused: is group-writable']);
  });

  it('a parent that cannot answer is a temporary failure', async () => {
    const h = host();
    writeTables(h);
    const { Expander, openActionTables, PasswdFile, userbaseLookup } = await import('../../src/expand/index.ts');
    const { config } = parseConfig(conf(h.dir, 'mbox forward-file'), { file: 'smtpd.conf' });
    const ruleset = Ruleset.fromConfig(config, { localNames: HOST });
    const expander = new Expander(config, {
      ruleset,
      tables: openActionTables(config),
      getpwnam: userbaseLookup(new PasswdFile(h.at('passwd'))),
      readForward: () => Promise.reject(new Error('parent went away')),
    });
    const e = await expander.expand({ session: REMOTE, mailFrom: '', rcptTo: 'bob@example.org' });
    ruleset.close();
    expect(e).toMatchObject({ result: 'tempfail', code: 424, log: `${h.home('bob')}/.forward: cannot be read: parent went away` });
  });
});

describe('a command whose %{...} can never be filled in', () => {
  it('is refused at RCPT, for now, naming the table entry, rather than accepted and failed at every delivery', async () => {
    const h = host();
    writeTables(h);
    const { lines } = await expand(h, conf(h.dir, 'mbox alias <aliases> allow-exec'), 'badformat@example.org');
    expect(lines).toEqual([expect.stringMatching(
      /^tempfail 424 4\.2\.4 Mailing list expansion problem: <badformat@example\.org> \| table aliases, key badformat: unknown format variable %\{nosuch\} at column 11 /,
    )]);
  });
});

describe(':include: files', () => {
  /** Reads every include as if it had this owner and mode: files and commands in it count only if root alone can change it. */
  const asIf = (uid: number, mode: number) => ({
    readInclude: async (path: string) => ({ ...(await readIncludeFile(path)), uid, mode: 0o100000 | mode }),
  });

  it('a command in an included file runs, with allow-exec, when only root can change the file', async () => {
    const h = host();
    writeTables(h);
    const { lines } = await expand(h, conf(h.dir, 'mbox alias <aliases> allow-exec'), 'incpipe@example.org', REMOTE, asIf(0, 0o644));
    expect(lines).toContainEqual(expect.stringMatching(/^incpipe@example.org -> local: command "\/usr\/bin\/vacation dave" as /));
  });

  it.each([
    ['owned by another user', 1000, 0o644, 'is owned by uid 1000, not root'],
    ['group-writable', 0, 0o664, 'is group-writable'],
    ['world-writable', 0, 0o646, 'is world-writable'],
  ])('one %s may list addresses, but a command in it is refused and the log says why', async (_what, uid, mode, why) => {
    const h = host();
    writeTables(h);
    const aliasExec = conf(h.dir, 'mbox alias <aliases> allow-exec');
    const { lines } = await expand(h, aliasExec, 'incpipe@example.org', REMOTE, asIf(uid, mode));
    expect(lines).toEqual([REFUSED('incpipe@example.org',
      `$D/pipes.list line 2, included from table aliases, key incpipe: command target refused: $D/pipes.list ${why}, so it may list addresses only`)]);
    const staff = await expand(h, aliasExec, 'inc@example.org', REMOTE, asIf(uid, mode));
    expect(staff.expansion.result).toBe('ok');
  });

  it('a FIFO, a device or a huge file is refused at once, never read', async () => {
    const h = host();
    const fifo = h.at('fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await expect(readIncludeFile(fifo)).rejects.toThrow('not a regular file');
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(readIncludeFile('/dev/zero')).rejects.toThrow('not a regular file');
    h.write('huge.list', 'x'.repeat(MAX_INCLUDE_SIZE + 1));
    await expect(readIncludeFile(h.at('huge.list'))).rejects.toThrow(`larger than ${MAX_INCLUDE_SIZE} bytes`);
    h.write('ok.list', 'bob\n');
    expect(await readIncludeFile(h.at('ok.list'))).toMatchObject({ content: 'bob\n', uid: process.getuid?.() });
  });
});

describe('limits', () => {
  it('more than 1000 nodes in one expansion is a permanent failure', async () => {
    const h = host();
    writeTables(h);
    const members = Array.from({ length: 1000 }, (_, i) => `m${i}@gmail.com`).join(', ');
    h.write('aliases', `big: ${members}\n`);
    const { lines } = await expand(h, conf(h.dir, 'mbox alias <aliases>'), 'big@example.org');
    expect(lines).toEqual([EXPANSION('big@example.org', 'table aliases, key big: more than 1000 nodes in one expansion')]);
  });

  it('998 members fit', async () => {
    const h = host();
    writeTables(h);
    const members = Array.from({ length: 998 }, (_, i) => `m${i}@gmail.com`).join(', ');
    h.write('aliases', `big: ${members}\n`);
    const { expansion } = await expand(h, conf(h.dir, 'mbox alias <aliases>'), 'big@example.org');
    expect(expansion.result === 'ok' && expansion.recipients.length).toBe(998);
  });
});
