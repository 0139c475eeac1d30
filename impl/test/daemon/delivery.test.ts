/**
 * Local delivery through the whole daemon: a message accepted over SMTP
 * is expanded in lookup, queued, scheduled, and written by a delivery
 * agent running as the recipient's user; what it wrote is read back by
 * Python's mailbox and email modules. And the allow-exec rules, at RCPT
 * and, for an envelope changed on disk, in the agent itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, freePort, startServing, workDir, writeOnDescriptor } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();
const asRoot = process.getuid?.() === 0;

/** A work directory whose mail/ and out/ any user may write into (1777), and a config built from `lines`. */
async function setUp(lines: (dir: string, port: number) => string[]) {
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  for (const sub of ['mail', 'out']) {
    mkdirSync(join(dir, sub));
    chmodSync(join(dir, sub), 0o1777);
  }
  writeFileSync(conf, [`listen on 127.0.0.1 port ${port}`, ...lines(dir, port), ''].join('\n'));
  return { port, dir, conf, spool };
}

function swaks(port: number, to: string, from = 'nobody@example.org') {
  return spawnSync('swaks', [
    '--server', `127.0.0.1:${port}`, '--helo', 'client.example.org', '--from', from, '--to', to,
    '--h-Subject', 'delivery test', '--body', 'hello from the delivery test',
  ], { encoding: 'utf8', timeout: 30_000 });
}

/** Waits until `count` files are in a Maildir's new/. */
async function mailIn(maildir: string, count = 1, timeoutMs = 20_000): Promise<string[]> {
  const newDir = join(maildir, 'new');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = existsSync(newDir) ? readdirSync(newDir) : [];
    if (files.length >= count) return files.map((f) => join(newDir, f));
    if (Date.now() > deadline) throw new Error(`${newDir}: ${files.length} of ${count} message(s) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Python's mailbox module reads a Maildir: each message's headers we care about, and its body. */
function readMaildir(maildir: string): { subject: string; to: string; deliveredTo: string; returnPath: string; body: string; type: string }[] {
  const script = `
import json, mailbox, sys
out = []
for m in mailbox.Maildir(sys.argv[1], create=False):
    body = m.get_payload(decode=True) if not m.is_multipart() else b''
    out.append({'subject': m['Subject'] or '', 'to': m['To'] or '', 'deliveredTo': m['Delivered-To'] or '',
                'returnPath': m['Return-Path'] or '', 'body': (body or b'').decode('utf-8', 'replace'),
                'type': m.get_content_type()})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, maildir], { encoding: 'utf8' })) as never;
}

/** The local action for example.org, with the aliases in DIR/aliases, whose commands may run. */
function aliasesAllowExec(dir: string): string[] {
  return [
    `table aliases file:${dir}/aliases`,
    `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases> allow-exec`,
    'match from any for domain "example.org" action "local"',
  ];
}

/** The local action for example.org, and an action for hold.example that fails for now (a relay to port 9, where nothing listens). */
function localAndHold(dir: string, hold = 'action "hold" relay host smtp://127.0.0.1:9'): string[] {
  return [
    `action "local" maildir "${dir}/mail/%{user.username}"`,
    hold,
    'match from any for domain "example.org" action "local"',
    'match from any for domain "hold.example" action "hold"',
  ];
}

/**
 * The first message of a Maildir read as a delivery status report by
 * Python's email module: its MIME outline, the per-message fields and
 * the first recipient's, and how many recipient blocks it has.
 */
function readReport(maildir: string): {
  type: string; report: string; to: string; parts: string[];
  perMessage: Record<string, string>; rcpt: Record<string, string>; recipients: number;
} {
  const script = `
import email, glob, json, sys
from email import policy
m = email.message_from_binary_file(open(glob.glob(sys.argv[1] + '/new/*')[0], 'rb'), policy=policy.compat32)
status = [p for p in m.walk() if p.get_content_type() == 'message/delivery-status'][0]
blocks = status.get_payload()
fields = lambda block: {k: str(v) for k, v in block.items()}
print(json.dumps({'type': m.get_content_type(), 'report': m.get_param('report-type'), 'to': m['To'],
  'parts': [p.get_content_type() for p in m.get_payload()], 'perMessage': fields(blocks[0]),
  'rcpt': fields(blocks[1]), 'recipients': len(blocks) - 1}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, maildir], { encoding: 'utf8' })) as never;
}

/**
 * Python's smtplib sends one message from nobody@example.org in one
 * transaction, with DSN parameters: each recipient is `[address, RCPT
 * TO options]`. Prints the reply to DATA.
 */
function smtplibSend(port: number, mailOptions: string[], recipients: [string, string[]][]): string {
  const script = `
import json, smtplib, sys
port, mail_options, recipients = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.org', timeout=30) as s:
    s.ehlo()
    assert s.has_extn('dsn'), 'no DSN in EHLO'
    s.mail('nobody@example.org', mail_options)
    for address, options in recipients:
        code, reply = s.rcpt(address, options)
        assert code == 250, (address, code, reply)
    print(*s.data(b'From: nobody@example.org\\r\\nSubject: please confirm\\r\\n\\r\\nhello from the success test\\r\\n'))
`;
  return execFileSync('python3', ['-c', script, String(port), JSON.stringify(mailOptions), JSON.stringify(recipients)], {
    encoding: 'utf8', timeout: 30_000,
  }).trim();
}

describe.runIf(asRoot)('local delivery through the daemon', { timeout: 90_000 }, () => {
  it('an alias expands to a system user, whose agent writes the message to a Maildir Python reads back', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => [
      `table aliases file:${dir}/aliases`,
      `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases>`,
      'match from any for domain "example.org" action "local"',
    ]);
    writeFileSync(join(dir, 'aliases'), 'team: nobody\n');
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const sent = swaks(port, 'team@example.org');
    expect(sent.stdout).toMatch(/<- {2}250 /);
    const [file] = await mailIn(join(dir, 'mail', 'nobody'));
    const [message] = readMaildir(join(dir, 'mail', 'nobody'));
    expect(message).toMatchObject({ subject: 'delivery test', deliveredTo: 'team@example.org', returnPath: '<nobody@example.org>' });
    expect(message!.body).toContain('hello from the delivery test');
    // Written by the agent, as the recipient's user.
    expect(execFileSync('stat', ['-c', '%U', file!], { encoding: 'utf8' }).trim()).toBe('nobody');
    await daemon.waitFor(/mda delivery evpid=\w+ from=<nobody@example.org> to=<team@example.org> rcpt=<team@example.org> user=nobody .*result=Ok stat=Delivered/);
  });

  it('a command in an alias is refused at RCPT with 451 without allow-exec, and the log names the table and key', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => [
      `table aliases file:${dir}/aliases`,
      `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases>`,
      'match from any for domain "example.org" action "local"',
    ]);
    writeFileSync(join(dir, 'aliases'), `pipe: "|/bin/sh -c 'cat > ${dir}/out/piped'"\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const sent = swaks(port, 'pipe@example.org');
    expect(sent.stdout).toMatch(/<\*\* 451 4\.7\.0 Recipient expansion refused by local policy: <pipe@example.org>/);
    const line = await daemon.waitFor(/lookup: pipe@example.org: /);
    expect(line).toContain('aliases');
    expect(line).toMatch(/allow-exec/);
    expect(existsSync(join(dir, 'out', 'piped'))).toBe(false);
  });

  it('a refusal whose reason quotes a huge table entry is logged on one line of bounded size', async () => {
    const { port, dir, conf, spool } = await setUp(aliasesAllowExec);
    writeFileSync(join(dir, 'aliases'), `huge: "not an address ${'x'.repeat(100_000)}"\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'huge@example.org').stdout).toMatch(/<\*\* 4\d\d /);
    const line = await daemon.waitFor(/lookup: huge@example.org: /);
    expect(line.length).toBeLessThan(2200);
    expect(line).toMatch(/\.\.\.$/);
  });

  it('with alias <t> allow-exec the command runs, with the message on its stdin', async () => {
    const { port, dir, conf, spool } = await setUp(aliasesAllowExec);
    writeFileSync(join(dir, 'aliases'), `pipe: "|/bin/sh -c 'cat > ${dir}/out/piped'"\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'pipe@example.org').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<pipe@example.org> .*result=Ok/);
    expect(readFileSync(join(dir, 'out', 'piped'), 'utf8')).toContain('hello from the delivery test');
  });

  it("a FIFO nobody reads fails for now at once, and holds up none of its user's other deliveries; with a reader, it gets the mail", async () => {
    const { port, dir, conf, spool } = await setUp(aliasesAllowExec);
    const fifo = join(dir, 'out', 'fifo');
    execFileSync('mkfifo', ['-m', '0666', fifo]);
    // Both run as the daemon's account, in one agent.
    writeFileSync(join(dir, 'aliases'), `fifo: ${fifo}\nbox: ${join(dir, 'out', 'box')}\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    // Four: as many as the threads of libuv's pool, which a blocking open() of the FIFO held for good, the box's after them.
    for (let i = 0; i < 4; i++) expect(swaks(port, 'fifo@example.org').stdout).toMatch(/<- {2}250 /);
    expect(swaks(port, 'box@example.org').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<box@example.org> .*result=Ok/, 10_000);
    expect(readFileSync(join(dir, 'out', 'box'), 'utf8')).toContain('hello from the delivery test');
    const failed = new RegExp(`mda delivery .*to=<fifo@example.org> .*result=TempFail stat=mbox ${fifo}: no process is reading the FIFO$`);
    await daemon.waitFor(failed, 5000);

    // A reader (open for writing too, so that it never reads the end of the file while no writer has it open).
    const reader = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
    try {
      let read = '';
      reader.setEncoding('utf8').on('data', (text: string) => (read += text));
      expect(swaks(port, 'fifo@example.org').stdout).toMatch(/<- {2}250 /);
      await daemon.waitFor(/mda delivery .*to=<fifo@example.org> .*result=Ok/, 10_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(read).toMatch(/^From nobody@example.org .*\n[^]*hello from the delivery test\n/);
    } finally {
      reader.destroy();
    }
  });

  /** How tamperedEnvelope() sets up: the config lines (localAndHold() by default), and files to write before the first start. */
  interface TamperOptions {
    lines?: (dir: string) => string[];
    prepare?: (dir: string) => void;
  }

  /**
   * A message held for later (its relay fails), the daemon stopped, and
   * then the attacker's edit: the envelope on disk now names the local
   * action (which has no allow-exec) and the delivery `delivery(dir)`,
   * "from an alias". Returns the restarted daemon.
   */
  async function tamperedEnvelope(delivery: (dir: string) => Record<string, unknown>, edit: TamperOptions = {}) {
    const { port, dir, conf, spool } = await setUp(edit.lines ?? ((dir) => localAndHold(dir)));
    edit.prepare?.(dir);
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'nobody@hold.example').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<nobody@hold.example> .*result=TempFail/);
    process.kill(daemon.pid, 'SIGTERM');
    await daemon.exited;

    const bucketDirs = readdirSync(join(spool, 'queue')).map((b) => join(spool, 'queue', b));
    const envelopeFile = bucketDirs.flatMap((b) => readdirSync(b).filter((f) => f.length === 16).map((f) => join(b, f)))[0]!;
    const record = JSON.parse(readFileSync(envelopeFile, 'utf8')) as Record<string, unknown>;
    // The failed attempt is on disk: a restarted scheduler resumes the same schedule from it.
    expect(record).toMatchObject({ attempts: 1, lastError: expect.stringMatching(/remote delivery is not built yet/) });
    expect(record['lastTryAt']).toEqual(expect.any(Number));
    record['dispatcher'] = 'local';
    record['recipient'] = { user: 'nobody', domain: 'example.org' };
    record['delivery'] = { user: 'nobody', source: { kind: 'alias', where: 'table aliases, key nobody' }, ...delivery(dir) };
    record['attempts'] = 0;
    delete record['lastTryAt'];
    writeFileSync(envelopeFile, `${JSON.stringify(record)}\n`);

    daemon = await startServing(conf, spool);
    running.push(daemon);
    return { daemon, dir };
  }

  it('an envelope changed on disk to run a command is refused by the agent, with a warning', async () => {
    const { daemon, dir } = await tamperedEnvelope((dir) => ({ kind: 'command', target: `touch ${join(dir, 'out', 'pwned')}` }));
    const warning = await daemon.waitFor(/refusing to run a command/);
    expect(warning).toMatch(/^warn: agent: envelope \w{16}: refusing to run a command: /);
    await daemon.waitFor(/mda delivery .*result=TempFail stat=command refused: /);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(dir, 'out', 'pwned'))).toBe(false);
  });

  it('an envelope changed on disk to append to a file (a ~/.profile, say) is refused by the agent too', async () => {
    const { daemon, dir } = await tamperedEnvelope((dir) => ({ kind: 'file', target: join(dir, 'out', 'profile') }));
    const warning = await daemon.waitFor(/refusing to append to a file/);
    expect(warning).toMatch(/^warn: agent: envelope \w{16}: refusing to append to a file: ".*profile" for nobody from table aliases, key nobody: action "local" has no alias table$/);
    await daemon.waitFor(/mda delivery .*result=TempFail stat=file refused: /);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(dir, 'out', 'profile'))).toBe(false);
  });

  /**
   * What a taken-over smtp could commit on a host whose local action
   * allows commands from aliases and from ~/.forward: bob (uid 65534 in
   * the userbase) has a ~/.forward with one command, and the aliases
   * file has one command too (which runs as _smtpd).
   */
  const execEverywhere: TamperOptions = {
    lines: (dir) => [
      `table users file:${dir}/users`,
      `table aliases file:${dir}/aliases`,
      `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases> allow-exec userbase <users> forward-file allow-exec`,
      'action "hold" relay host smtp://127.0.0.1:9',
      'match from any for domain "example.org" action "local"',
      'match from any for domain "hold.example" action "hold"',
    ],
    prepare: (dir) => {
      const NOBODY = 65534;
      const home = join(dir, 'home', 'bob');
      mkdirSync(home, { recursive: true });
      chmodSync(join(dir, 'home'), 0o755);
      writeFileSync(join(dir, 'users'), `bob ${NOBODY}:${NOBODY}:${home}\n`);
      writeFileSync(join(dir, 'aliases'), `run: "|/bin/sh -c 'cat > ${dir}/out/ran'"\n`);
      writeFileSync(join(home, '.forward'), `# bob's forward\n|/bin/sh -c 'cat > ${dir}/out/forwarded'\n`);
      chownSync(home, NOBODY, NOBODY);
      chownSync(join(home, '.forward'), NOBODY, NOBODY);
      chmodSync(join(home, '.forward'), 0o644);
    },
  };
  const fromBobsForward = (dir: string) => ({ kind: 'forward', where: `${join(dir, 'home', 'bob', '.forward')} line 2` });

  it("an envelope with a command \"from bob's ~/.forward\" that his ~/.forward does not list is refused by the agent", async () => {
    const { daemon, dir } = await tamperedEnvelope((dir) => ({
      user: 'bob', kind: 'command', target: `touch ${join(dir, 'out', 'pwned')}`, source: fromBobsForward(dir),
    }), execEverywhere);
    const warning = await daemon.waitFor(/refusing to run a command/);
    expect(warning).toMatch(/^warn: agent: envelope \w{16}: refusing to run a command: "touch .*pwned" for bob from .*\.forward line 2: .*\.forward does not list it now$/);
    await daemon.waitFor(/mda delivery .*result=TempFail stat=command refused: /);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(dir, 'out', 'pwned'))).toBe(false);
  });

  it("an envelope with a command from bob's ~/.forward that his ~/.forward lists is delivered, as bob", async () => {
    const { daemon, dir } = await tamperedEnvelope((dir) => ({
      user: 'bob', kind: 'command', target: `/bin/sh -c 'cat > ${join(dir, 'out', 'forwarded')}'`, source: fromBobsForward(dir),
    }), execEverywhere);
    await daemon.waitFor(/mda delivery .*user=bob .*result=Ok/);
    expect(readFileSync(join(dir, 'out', 'forwarded'), 'utf8')).toContain('hello from the delivery test');
    expect(execFileSync('stat', ['-c', '%u', join(dir, 'out', 'forwarded')], { encoding: 'utf8' }).trim()).toBe('65534');
    expect(daemon.lines.some((l) => /refusing/.test(l))).toBe(false);
  });

  it('an envelope with an alias command running as another account than the action gives aliases is refused by the agent', async () => {
    const { daemon, dir } = await tamperedEnvelope((dir) => ({
      user: 'nobody', kind: 'command', target: `/bin/sh -c 'cat > ${join(dir, 'out', 'ran')}'`, source: { kind: 'alias', where: 'table aliases, key run' },
    }), execEverywhere);
    const warning = await daemon.waitFor(/refusing to run a command/);
    expect(warning).toMatch(/^warn: agent: envelope \w{16}: refusing to run a command: ".*" for nobody from table aliases, key run: alias <aliases> of action "local" runs its commands as _smtpd, not as nobody$/);
    await daemon.waitFor(/mda delivery .*result=TempFail stat=command refused: /);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(dir, 'out', 'ran'))).toBe(false);
  });

  it('a permanent failure bounces to the sender as an RFC 3464 report, and the bounce is never bounced', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir, 'action "hold" mda "exit 67"'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'nobody@hold.example').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'));
    const report = readReport(join(dir, 'mail', 'nobody'));
    expect(report).toMatchObject({
      type: 'multipart/report', report: 'delivery-status', to: 'nobody@example.org',
      parts: ['text/plain', 'message/delivery-status', 'message/rfc822'],
      rcpt: { Action: 'failed', 'Final-Recipient': 'rfc822; nobody@hold.example' },
    });
    expect(report.rcpt['Status']).toMatch(/^5\./);
    await daemon.waitFor(/bounce msgid=\w+ to <nobody@example.org>/);

    // A sender whose own address fails the same way: its bounce fails
    // too, and is deleted with a log line instead of being bounced.
    expect(swaks(port, 'nobody@hold.example', 'nobody@hold.example').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/bounce msgid=\w+ to <nobody@hold.example>/);
    await daemon.waitFor(/no bounce: the sender is <>/);
    await new Promise((r) => setTimeout(r, 500));
    expect(daemon.lines.filter((l) => /queue: bounce msgid=/.test(l))).toHaveLength(2);
  });

  it('a bounce whose sender cannot take it for now stays queued, and goes out once the sender can', async () => {
    // The sender's address is an alias for a command, which the local action may not run: 451 for now.
    const lines = (dir: string) => [
      `table aliases file:${dir}/aliases`,
      `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases>`,
      'action "fail" mda "exit 67"',
      'match from any for domain "example.org" action "local"',
      'match from any for domain "fail.example" action "fail"',
    ];
    const { port, dir, conf, spool } = await setUp(lines);
    writeFileSync(join(dir, 'aliases'), 'sender: "|/bin/cat"\n');
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'nobody@fail.example', 'sender@example.org').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/could not be bounced: .*the sender <sender@example.org> cannot take it for now: 451 .*; trying again in 1 min/);
    expect(daemon.lines.some((l) => /dropped/.test(l))).toBe(false);
    process.kill(daemon.pid, 'SIGTERM');
    await daemon.exited;

    // The administrator mends the alias; after a restart the failure is found again, and bounced.
    writeFileSync(join(dir, 'aliases'), 'sender: nobody\n');
    daemon = await startServing(conf, spool);
    running.push(daemon);
    await mailIn(join(dir, 'mail', 'nobody'));
    expect(readReport(join(dir, 'mail', 'nobody')).rcpt).toMatchObject({ Action: 'failed', 'Final-Recipient': 'rfc822; nobody@fail.example' });
  });

  it('with a userbase table, an alias command runs as the daemon account, found among the system accounts', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => [
      `table aliases file:${dir}/aliases`,
      `table users file:${dir}/users`,
      `action "local" maildir "${dir}/mail/%{user.username}" alias <aliases> allow-exec userbase <users>`,
      'match from any for domain "example.org" action "local"',
    ]);
    writeFileSync(join(dir, 'users'), `bob 65534:65534:${dir}\n`);
    writeFileSync(join(dir, 'aliases'), `run: "|/bin/sh -c 'cat > ${dir}/out/ran'"\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'run@example.org').stdout).toMatch(/<- {2}250 .*accepted/);
    await daemon.waitFor(/mda delivery .*to=<run@example.org> .*result=Ok/);
    expect(readFileSync(join(dir, 'out', 'ran'), 'utf8')).toMatch(/hello from the delivery test/);
  });

  it('~/.forward is read only with forward-file, and its commands run only with forward-file allow-exec', async () => {
    const NOBODY = 65534;
    for (const allowExec of [false, true]) {
      const { port, dir, conf, spool } = await setUp((dir) => [
        `table users file:${dir}/users`,
        `action "local" maildir "${dir}/mail/%{user.username}" userbase <users> forward-file${allowExec ? ' allow-exec' : ''}`,
        'match from any for domain "example.org" action "local"',
      ]);
      const home = join(dir, 'home', 'bob');
      mkdirSync(home, { recursive: true });
      chmodSync(join(dir, 'home'), 0o755);
      writeFileSync(join(dir, 'users'), `bob ${NOBODY}:${NOBODY}:${home}\n`);
      writeFileSync(join(home, '.forward'), `# bob's forward\n|/bin/sh -c 'cat > ${dir}/out/forwarded'\n`);
      chownSync(home, NOBODY, NOBODY);
      chownSync(join(home, '.forward'), NOBODY, NOBODY);
      chmodSync(join(home, '.forward'), 0o644);
      const daemon = await startServing(conf, spool);
      running.push(daemon);
      const sent = swaks(port, 'bob@example.org');
      if (!allowExec) {
        expect(sent.stdout).toMatch(/<\*\* 451 4\.7\.0 /);
        expect(await daemon.waitFor(/lookup: bob@example.org: /)).toMatch(/\.forward line 2: command target refused: .*forward-file allow-exec/);
      } else {
        expect(sent.stdout).toMatch(/<- {2}250 /);
        await daemon.waitFor(/mda delivery .*to=<bob@example.org> .*result=Ok/);
        expect(readFileSync(join(dir, 'out', 'forwarded'), 'utf8')).toContain('hello from the delivery test');
        // It ran as bob, the owner of the .forward: here uid 65534.
        expect(execFileSync('stat', ['-c', '%u', join(dir, 'out', 'forwarded')], { encoding: 'utf8' }).trim()).toBe(String(NOBODY));
      }
      process.kill(-daemon.pid, 'SIGKILL');
    }
  });

  it('a message still queued after bounce warn-interval brings its sender a delay warning (Action: delayed)', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => ['bounce warn-interval 2s', ...localAndHold(dir)]);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'someone@hold.example').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'), 1, 30_000);
    const warning = readReport(join(dir, 'mail', 'nobody'));
    expect(warning).toMatchObject({ parts: ['text/plain', 'message/delivery-status', 'text/rfc822-headers'], rcpt: { Action: 'delayed' } });
    expect(warning.rcpt['Will-Retry-Until']).toBeTruthy();
    await daemon.waitFor(/delay warning msgid=\w+ to <nobody@example.org>/);
  });

  it('ENVID and ORCPT come back in the bounce as the client wrote them, + and non-ASCII included', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir, 'action "hold" mda "exit 67"'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    // `+2B` is a `+`; `+C3+A9` is an `é`, in UTF-8.
    expect(smtplibSend(port, ['ENVID=id+2Bx+C3+A9y', 'RET=HDRS'], [
      ['nobody@hold.example', ['ORCPT=rfc822;b+2Bo+C3+A9b@hold.example']],
    ])).toMatch(/^250 /);
    await mailIn(join(dir, 'mail', 'nobody'));
    const report = readReport(join(dir, 'mail', 'nobody'));
    // Not ASCII, so in xtext again, as sent: the same ENVID, for the sender's software to match.
    expect(report.perMessage['Original-Envelope-Id']).toBe('id+2Bx+C3+A9y');
    // RFC 6533's utf-8 address type: one escape per character, é is U+00E9.
    expect(report.rcpt['Original-Recipient']).toBe('utf-8; b\\x{2B}o\\x{E9}b@hold.example');
    expect(report.parts).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
  });

  it('a restart between two retries keeps the retry table and the ttl counted from the arrival', async () => {
    // Local schedule: tries at 0 s and 10 s after the arrival, then the expiry at 14 s.
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir, 'action "hold" mda "exit 75" ttl 14s'));
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    const arrival = Date.now();
    expect(swaks(port, 'nobody@hold.example').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<nobody@hold.example> .*result=TempFail/);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));

    daemon = await startServing(conf, spool);
    running.push(daemon);
    const attempt = /mda delivery .*to=<nobody@hold.example> .*result=TempFail/;
    await daemon.waitFor(attempt, 15_000);
    // Not at the restart, nor 10 s after it: at 10 s after the arrival (whole seconds, so give or take one).
    const second = (Date.now() - arrival) / 1000;
    expect(second).toBeGreaterThan(9);
    expect(second).toBeLessThan(12.5);
    await daemon.waitFor(/queue: bounce msgid=/, 10_000);
    const expired = (Date.now() - arrival) / 1000;
    expect(expired).toBeGreaterThan(13);
    expect(expired).toBeLessThan(16.5);
    expect(daemon.lines.filter((l) => attempt.test(l))).toHaveLength(2);
    await mailIn(join(dir, 'mail', 'nobody'));
    expect(readReport(join(dir, 'mail', 'nobody')).rcpt).toMatchObject({ Action: 'failed', Status: '4.4.7' });
  });

  it('an envelope whose action was removed from smtpd.conf before a restart goes to corrupt/, named, and the daemon goes on', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir, 'action "hold" mda "exit 75"'));
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'nobody@hold.example').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<nobody@hold.example> .*result=TempFail/);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);

    writeFileSync(conf, [`listen on 127.0.0.1 port ${port}`, `action "local" maildir "${dir}/mail/%{user.username}"`,
      'match from any for domain "example.org" action "local"', ''].join('\n'));
    daemon = await startServing(conf, spool);
    running.push(daemon);
    // Not delivered, not bounced, not retried: kept aside for the administrator, with the action to put back.
    await daemon.waitFor(/^warn: queue: envelope \w{16}: unknown dispatcher: action "hold" is not in smtpd.conf; moved to corrupt\/$/);
    await daemon.waitFor(/^info: queue: 0 envelope\(s\) in the spool at start-up$/);
    expect(readdirSync(join(spool, 'corrupt'))).toHaveLength(2); // the envelope, and its message, left without one
    expect(swaks(port, 'nobody@example.org').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'));
    expect(daemon.lines.filter((l) => /to=<nobody@hold.example>/.test(l))).toEqual([]);
  });

  it('recipients of one message that fail together get one bounce naming them all, as in OpenSMTPD', async () => {
    const NOBODY = 65534;
    const { port, dir, conf, spool } = await setUp((dir) => [
      `table users file:${dir}/users`,
      `action "local" maildir "${dir}/mail/%{user.username}"`,
      `action "fail" mda "exit 67" userbase <users>`,
      'match from any for domain "example.org" action "local"',
      'match from any for domain "fail.example" action "fail"',
    ]);
    writeFileSync(join(dir, 'users'), ['bob', 'carol', 'dave'].map((u) => `${u} ${NOBODY}:${NOBODY}:/nonexistent\n`).join(''));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(smtplibSend(port, [], [['bob@fail.example', []], ['carol@fail.example', []], ['dave@fail.example', []]])).toMatch(/^250 /);
    await daemon.waitFor(/queue: bounce msgid=\w+ to <nobody@example.org> for 3 recipient\(s\)/);
    await mailIn(join(dir, 'mail', 'nobody'));
    const report = readReport(join(dir, 'mail', 'nobody'));
    expect(report.recipients).toBe(3);
    // The three fail at about the same time, in any order, and the report names them in the order they failed.
    expect(report.rcpt).toMatchObject({ Action: 'failed', 'Final-Recipient': expect.stringMatching(/^rfc822; (bob|carol|dave)@fail\.example$/) });
    await new Promise((r) => setTimeout(r, 1500));
    expect(daemon.lines.filter((l) => /queue: bounce msgid=/.test(l))).toHaveLength(1);
  });

  it('one delay warning per interval until the expiry, then one bounce; NOTIFY decides who hears what', async () => {
    // Tries at 0 s and the expiry, 6 s; warnings due at 2 s and 4 s, and at 30 s, after the expiry.
    const { port, conf, spool } = await setUp((dir) => [
      'bounce warn-interval 2s, 4s, 30s', ...localAndHold(dir, 'action "hold" mda "exit 75" ttl 6s'),
    ]);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const msgid = (reply: string) => /^250 \S+ ([0-9a-f]{8}) /.exec(reply)![1]!;
    const plain = msgid(smtplibSend(port, [], [['nobody@hold.example', []]]));
    const failureOnly = msgid(smtplibSend(port, [], [['nobody@hold.example', ['NOTIFY=FAILURE']]]));
    const never = msgid(smtplibSend(port, [], [['nobody@hold.example', ['NOTIFY=NEVER']]]));
    await daemon.waitFor(new RegExp(`envelope ${never}\\w{8}: no bounce: DSN NOTIFY=NEVER asks for no failure notice`), 15_000);
    await daemon.waitFor(new RegExp(`queue: bounce msgid=\\w+ .* of msgid=${failureOnly}`));
    await daemon.waitFor(new RegExp(`queue: bounce msgid=\\w+ .* of msgid=${plain}`));
    await new Promise((r) => setTimeout(r, 1500));
    const reports = (of: string) => daemon.lines.flatMap((l) => {
      const m = new RegExp(`queue: (bounce|delay warning) msgid=\\w+ .* of msgid=${of}$`).exec(l);
      return m ? [m[1]] : [];
    });
    expect(reports(plain)).toEqual(['delay warning', 'delay warning', 'bounce']);
    expect(reports(failureOnly)).toEqual(['bounce']);
    expect(reports(never)).toEqual([]);
    // NOTIFY=NEVER tells nobody, but its envelope goes all the same: the queue is empty.
    expect(readdirSync(join(spool, 'queue')).flatMap((b) => readdirSync(join(spool, 'queue', b)))).toEqual([]);
  });

  it('mail for root, with no action that delivers to an mbox, fails for good at once and bounces', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'root@example.org').stdout).toMatch(/<- {2}250 /);
    // Not a temporary failure retried for days: no retry can change it (OpenSMTPD: MDA_PERMFAIL).
    await daemon.waitFor(/mda delivery .*to=<root@example.org> .*result=PermFail stat=not allowed to deliver to root/);
    await mailIn(join(dir, 'mail', 'nobody'), 1, 30_000);
    const report = readReport(join(dir, 'mail', 'nobody'));
    expect(report.rcpt).toMatchObject({ 'Final-Recipient': 'rfc822; root@example.org', Action: 'failed' });
    expect(report.rcpt['Status']).toMatch(/^5\./);
  });

  it('one delay warning that covers intervals the daemon slept through is not sent again after the next restart', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => ['bounce warn-interval 1s, 2s, 3s', ...localAndHold(dir)]);
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    const sentAt = Date.now();
    expect(swaks(port, 'someone@hold.example').stdout).toMatch(/<- {2}250 /);
    await daemon.waitFor(/mda delivery .*to=<someone@hold.example>.*result=TempFail/);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
    // Down while the last intervals go by: the next daemon sends one warning for them all.
    await new Promise((r) => setTimeout(r, Math.max(0, sentAt + 4000 - Date.now())));
    daemon = await startServing(conf, spool);
    running.push(daemon);
    await daemon.waitFor(/delay warning msgid=\w+ to <nobody@example.org>/);
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
    const warned = readdirSync(join(dir, 'mail', 'nobody', 'new')).length;

    // Every interval has been warned of: a restart sends nothing more.
    daemon = await startServing(conf, spool);
    running.push(daemon);
    await daemon.waitFor(/^info: queue: 1 envelope\(s\) in the spool at start-up$/);
    await new Promise((r) => setTimeout(r, 2000));
    expect(daemon.lines.filter((l) => /delay warning/.test(l))).toEqual([]);
    expect(readdirSync(join(dir, 'mail', 'nobody', 'new'))).toHaveLength(warned);
  });

  it('with -B queue=log, mail is delivered, and after a restart the held message is back and the delivered one is not sent again', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir));
    let daemon = await startServing(conf, spool, ['-B', 'queue=log']);
    running.push(daemon);
    expect(swaks(port, 'nobody@example.org').stdout).toMatch(/<- {2}250 /);
    expect(swaks(port, 'someone@hold.example').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'));
    await daemon.waitFor(/mda delivery .*to=<someone@hold.example>.*result=TempFail/);
    expect(existsSync(join(spool, 'queue'))).toBe(false); // the log backend keeps no file per message
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);

    daemon = await startServing(conf, spool, ['-B', 'queue=log']);
    running.push(daemon);
    // Only the held envelope: the delivered one's DELETE reached the log.
    await daemon.waitFor(/^info: queue: 1 envelope\(s\) in the spool at start-up$/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(readdirSync(join(dir, 'mail', 'nobody', 'new'))).toHaveLength(1);
  });

  it('SIGTERM lets a delivery under way finish and records it: after a restart it is not run again', async () => {
    const { port, dir, conf, spool } = await setUp(aliasesAllowExec);
    // A slow command: it is still running when the daemon is told to stop.
    writeFileSync(join(dir, 'aliases'), `slow: "|/bin/sh -c 'touch ${dir}/out/started; sleep 2; cat >> ${dir}/out/slow'"\n`);
    let daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'slow@example.org').stdout).toMatch(/<- {2}250 /);
    const deadline = Date.now() + 20_000;
    while (!existsSync(join(dir, 'out', 'started')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    process.kill(daemon.pid, 'SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.lines.some((l) => / mda delivery .*to=<slow@example.org> .*result=Ok/.test(l))).toBe(true);

    daemon = await startServing(conf, spool);
    running.push(daemon);
    await daemon.waitFor(/^info: queue: 0 envelope\(s\) in the spool at start-up$/);
    await new Promise((r) => setTimeout(r, 3000));
    expect(readFileSync(join(dir, 'out', 'slow'), 'utf8').match(/hello from the delivery test/g)).toHaveLength(1);
  });

  it('runs at most 7 deliveries at once for one user, as OpenSMTPD does; the others wait their turn', async () => {
    const { port, dir, conf, spool } = await setUp(aliasesAllowExec);
    // Each run notes its start (+) and end (-), a second apart: the most + lines without their - is the concurrency.
    const log = join(dir, 'out', 'runs');
    writeFileSync(join(dir, 'aliases'), `many: "|/bin/sh -c 'echo + >> ${log}; cat > /dev/null; sleep 1; echo - >> ${log}'"\n`);
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const script = `
import smtplib, sys
with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30) as s:
    for i in range(16):
        s.sendmail('nobody@example.org', ['many@example.org'], b'Subject: burst %d\\r\\n\\nhello\\r\\n' % i)
`;
    execFileSync('python3', ['-c', script, String(port)], { timeout: 30_000 });
    const deadline = Date.now() + 30_000;
    const delivered = () => daemon.lines.filter((l) => / mda delivery .*to=<many@example.org> .*result=Ok/.test(l)).length;
    while (delivered() < 16 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(delivered()).toBe(16);
    let now = 0;
    let most = 0;
    for (const mark of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      now += mark === '+' ? 1 : -1;
      most = Math.max(most, now);
    }
    expect(most).toBe(7);
  });

  /** A daemon that has delivered one message to nobody, and the pid of nobody's delivery agent. */
  async function withNobodysAgent() {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'nobody@example.org').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'), 1);
    const started = await daemon.waitFor(/delivery agent for nobody started \(pid \d+\)/);
    return { port, dir, daemon, agent: Number(/pid (\d+)/.exec(started)![1]) };
  }

  /** Whether process `pid` is gone within ten seconds. */
  async function gone(pid: number): Promise<boolean> {
    const deadline = Date.now() + 10_000;
    while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return !existsSync(`/proc/${pid}`);
  }

  it('an agent whose user writes garbage to its socket to the parent is cut off; the root parent and the daemon go on', async () => {
    const { port, dir, daemon, agent } = await withNobodysAgent();
    // Over Node's IPC channel, a line that is not JSON threw inside the parent.
    writeOnDescriptor(agent, 3, Buffer.concat([Buffer.from('not json\n'.repeat(4)), Buffer.alloc(64, 0xff)]), 'nobody');
    await daemon.waitFor(/^warn: smtpd: delivery agent for nobody: channel to the parent closed: (bad framing|a frame is not JSON)/, 10_000);
    // The agent is gone, the parent is not, and the next message gets a new agent.
    expect(await gone(agent)).toBe(true);
    expect(existsSync(`/proc/${daemon.pid}`)).toBe(true);
    expect(swaks(port, 'nobody@example.org').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'), 2);
  });

  it('an agent whose user writes garbage to its socket to the dispatcher is dropped with a warning naming the user; the next message gets a new agent', async () => {
    const { port, dir, daemon, agent } = await withNobodysAgent();
    writeOnDescriptor(agent, 4, Buffer.from([0, 0, 0, 9, 0, ...Buffer.from('not json')]), 'nobody');
    await daemon.waitFor(/^warn: dispatcher: dropped the channel to the delivery agent for nobody \(uid 65534\): a frame is not JSON$/, 10_000);
    expect(await gone(agent)).toBe(true);
    expect(swaks(port, 'nobody@example.org').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'), 2);
  });

  it('a message whose queue ttl runs out is bounced with status 4.4.7 after a last try', async () => {
    const { port, dir, conf, spool } = await setUp((dir) => localAndHold(dir, 'action "hold" relay host smtp://127.0.0.1:9 ttl 3s'));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    expect(swaks(port, 'someone@hold.example').stdout).toMatch(/<- {2}250 /);
    await mailIn(join(dir, 'mail', 'nobody'), 1, 30_000);
    const report = readReport(join(dir, 'mail', 'nobody'));
    expect(report.rcpt).toMatchObject({ Action: 'failed', Status: '4.4.7' });
    expect(report.rcpt['Diagnostic-Code']).toMatch(/expired/);
    // Two attempts: the first at once, the last at the expiry.
    expect(daemon.lines.filter((l) => /mda delivery .*to=<someone@hold.example>/.test(l))).toHaveLength(2);
  });

  it('NOTIFY=SUCCESS brings the sender a report with Action: delivered; a recipient without it brings none', async () => {
    const NOBODY = 65534;
    const { port, dir, conf, spool } = await setUp((dir) => [
      `table users file:${dir}/users`,
      `action "local" maildir "${dir}/mail/%{user.username}" userbase <users>`,
      'match from any for domain "example.org" action "local"',
    ]);
    // Three mailboxes of one uid: the sender's, and two recipients'.
    writeFileSync(join(dir, 'users'), ['nobody', 'bob', 'carol'].map((u) => `${u} ${NOBODY}:${NOBODY}:/nonexistent\n`).join(''));
    const daemon = await startServing(conf, spool);
    running.push(daemon);
    const sent = smtplibSend(port, ['ENVID=QQ314159', 'RET=FULL'], [
      ['bob@example.org', ['NOTIFY=SUCCESS', 'ORCPT=rfc822;Bob@example.org']],
      ['carol@example.org', []],
    ]);
    expect(sent).toMatch(/^250 /);

    // Both recipients have the message.
    for (const user of ['bob', 'carol']) {
      await mailIn(join(dir, 'mail', user));
      expect(readMaildir(join(dir, 'mail', user))).toMatchObject([{ subject: 'please confirm' }]);
    }
    // The sender has one report, about bob alone, with the header section.
    await mailIn(join(dir, 'mail', 'nobody'));
    await daemon.waitFor(/success report msgid=\w+ to <nobody@example.org> for 1 recipient/);
    const report = readReport(join(dir, 'mail', 'nobody'));
    expect(report).toMatchObject({
      type: 'multipart/report', report: 'delivery-status', to: 'nobody@example.org',
      parts: ['text/plain', 'message/delivery-status', 'text/rfc822-headers'],
      perMessage: { 'Original-Envelope-Id': 'QQ314159' },
      rcpt: {
        'Original-Recipient': 'rfc822; Bob@example.org', 'Final-Recipient': 'rfc822; bob@example.org',
        Action: 'delivered', Status: '2.0.0',
      },
      recipients: 1,
    });
    const [notice] = readMaildir(join(dir, 'mail', 'nobody'));
    expect(notice!.returnPath).toBe('<>');

    // carol asked for nothing: her delivery brings no report, now or later.
    await daemon.waitFor(/mda delivery .*to=<carol@example.org> .*result=Ok/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(readdirSync(join(dir, 'mail', 'nobody', 'new'))).toHaveLength(1);
    expect(daemon.lines.filter((l) => /queue: success report msgid=/.test(l))).toHaveLength(1);
  });
});
