/**
 * Commands: the `mda` method, `| command` and `/file` deliveries from
 * aliases, the wrapper, and procmail as a real MDA. Each runs through
 * deliverLocal(), as the dispatcher will run it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deliverLocal } from '../../src/delivery/deliver.ts';
import { commandOutcome } from '../../src/delivery/mda.ts';
import { content, readMaildirWithPython, readMboxWithPython, request, tempDirPerTest, unix } from './helpers.ts';

const MESSAGE = 'Received: from mail.example.org by mx.example.net\r\nSubject: caf\u00e9\r\n\r\n'
  + 'From the start\r\n.leading dot\r\n8-bit \u00e9\r\n';
const HEADERS = 'Return-Path: <alice@example.org>\nDelivered-To: bob+news@example.net\n';

describe('mda', () => {
  const freshDir = tempDirPerTest();
  let dir = '';
  const setup = () => (dir = freshDir());
  const mda = (command: string) => ({ kind: 'mda' as const, command });

  it('a shell script gets the exact bytes, in the home directory, with a clean environment', async () => {
    setup();
    const script = join(dir, 'mda.sh');
    writeFileSync(script, `#!/bin/sh\ncat > "${dir}/out"\nenv > "${dir}/env"\npwd > "${dir}/cwd"\n`);
    chmodSync(script, 0o755);
    const req = request(mda(script), dir, { delivery: { user: 'bob', kind: 'mailbox', subaddress: 'news' } });
    expect(await deliverLocal(req, content(MESSAGE))).toEqual({ result: 'ok' });
    expect(readFileSync(join(dir, 'out')).equals(Buffer.concat([Buffer.from(HEADERS), unix(MESSAGE)]))).toBe(true);
    expect(readFileSync(join(dir, 'cwd'), 'utf8')).toBe(`${dir}\n`);
    const env = Object.fromEntries(readFileSync(join(dir, 'env'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env).toMatchObject({
      PATH: '/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin:/usr/local/sbin',
      HOME: dir, USER: 'bob', LOGNAME: 'bob', SHELL: '/bin/sh',
      DOMAIN: 'example.net', LOCAL: 'bob+news', RECIPIENT: 'bob@example.net', SENDER: 'alice@example.org', EXTENSION: 'news',
    });
    const shellOwn = ['PWD', 'OLDPWD', 'SHLVL', '_'];
    expect(Object.keys(env).filter((k) => !shellOwn.includes(k)).sort())
      .toEqual(['DOMAIN', 'EXTENSION', 'HOME', 'LOCAL', 'LOGNAME', 'PATH', 'RECIPIENT', 'SENDER', 'SHELL', 'USER']);
  });

  const exits: [script: string, result: string, reason?: RegExp][] = [
    ['cat >/dev/null; exit 0', 'ok'],
    ['cat >/dev/null; echo "mailbox full, try later"; exit 75', 'tempfail', /^mda exited with status 75 \(temporary failure\): "mailbox full, try later"$/],
    ['cat >/dev/null; exit 71', 'tempfail', /status 71 \(system resource problem\)/],
    ['cat >/dev/null; echo noise; echo "no such user" >&2; exit 67', 'permfail', /^mda exited with status 67 \(user unknown\): "no such user"$/],
    ['cat >/dev/null; exit 1', 'permfail', /^mda exited with status 1$/],
    ['cat >/dev/null; kill -9 $$', 'tempfail', /^mda terminated by signal SIGKILL$/],
  ];
  it.each(exits)('%s -> %s', async (script, result, reason) => {
    setup();
    const outcome = await deliverLocal(request(mda(script), dir), content(MESSAGE));
    expect(outcome.result).toBe(result);
    if (reason) expect(outcome.result !== 'ok' && outcome.reason).toMatch(reason);
  });

  it('a command that hangs is stopped at the time limit, children included: tempfail', async () => {
    setup();
    const started = Date.now();
    const outcome = await deliverLocal(request(mda(`cat >/dev/null; sleep 30 & echo $! > "${dir}/pid"; wait`), dir), content(MESSAGE), { commandTimeoutMs: 300, killGraceMs: 100 });
    expect(outcome).toEqual({ result: 'tempfail', reason: 'mda timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(3000);
    // The background sleep was in the command's process group: it is gone
    // (or a zombie waiting for init to reap it).
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    const running = () => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    for (let i = 0; i < 20 && running(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(running()).toBe(false);
  });

  it('a command that exits 0 without reading the message is a temporary failure, as in OpenSMTPD', async () => {
    setup();
    const big = `Subject: big\r\n\r\n${'x'.repeat(1000)}\r\n`.repeat(1000);
    const outcome = await deliverLocal(request(mda('exit 0'), dir), content(big, 65536));
    expect(outcome).toMatchObject({ result: 'tempfail', reason: 'mda exited before reading the whole message' });
  });

  it('the wrapper runs around the command, with %{mda}', async () => {
    setup();
    const req = request(mda(`cat > "${dir}/out"`), dir, { wrapper: `echo wrapped > "${dir}/w"; %{mda}` });
    expect(await deliverLocal(req, content(MESSAGE))).toEqual({ result: 'ok' });
    expect(readFileSync(join(dir, 'w'), 'utf8')).toBe('wrapped\n');
    expect(readFileSync(join(dir, 'out')).equals(Buffer.concat([Buffer.from(HEADERS), unix(MESSAGE)]))).toBe(true);
  });

  it('procmail (-m with an rc file) delivers into a maildir that Python reads back', async () => {
    setup();
    writeFileSync(join(dir, 'procmailrc'), `LOGFILE=${dir}/procmail.log\n:0\n${dir}/Maildir/\n`);
    const outcome = await deliverLocal(request(mda(`/usr/bin/procmail -m ${dir}/procmailrc`), dir), content(MESSAGE));
    expect(outcome).toEqual({ result: 'ok' });
    const read = readMaildirWithPython(join(dir, 'Maildir'));
    expect(read.inbox).toHaveLength(1);
    expect(read.inbox[0]!.bytes.equals(Buffer.concat([Buffer.from(HEADERS), unix(MESSAGE)]))).toBe(true);
  });

  it('a | command from an allow-exec alias runs, with the same runner', async () => {
    setup();
    const req = request({ kind: 'mbox' }, dir, {
      delivery: { user: 'bob', kind: 'command', target: `cat > "${dir}/piped"`, source: { kind: 'alias', where: 'table aliases, key bob' } },
      actionOptions: { alias: { table: 'aliases', allowExec: true } },
    });
    expect(await deliverLocal(req, content(MESSAGE))).toEqual({ result: 'ok' });
    expect(readFileSync(join(dir, 'piped')).equals(Buffer.concat([Buffer.from(HEADERS), unix(MESSAGE)]))).toBe(true);
  });

  it('a | command from an alias without allow-exec never runs: tempfail, command refused', async () => {
    setup();
    const req = request({ kind: 'mbox' }, dir, {
      delivery: { user: 'bob', kind: 'command', target: `touch "${dir}/ran"`, source: { kind: 'alias', where: 'table aliases, key bob' } },
      actionOptions: { alias: { table: 'aliases', allowExec: false } },
    });
    const outcome = await deliverLocal(req, content(MESSAGE));
    expect(outcome.result).toBe('tempfail');
    expect(outcome.result !== 'ok' && outcome.reason).toMatch(/^command refused: .* from table aliases, key bob: alias <aliases> of action "local" is not marked allow-exec$/);
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });

  it('a /file from an alias is appended in mbox format', async () => {
    setup();
    const req = request({ kind: 'maildir', junk: false }, dir, {
      delivery: { user: 'bob', kind: 'file', target: join(dir, 'archive'), source: { kind: 'alias', where: 'table aliases, key bob' } },
      actionOptions: { alias: { table: 'aliases', allowExec: true } },
    });
    expect(await deliverLocal(req, content(MESSAGE))).toEqual({ result: 'ok', detail: join(dir, 'archive') });
    const [msg] = readMboxWithPython(join(dir, 'archive'));
    expect(msg!.from).toMatch(/^alice@example\.org \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    expect(msg!.bytes.toString()).toBe(`${HEADERS}${unix(MESSAGE).toString().replace('\nFrom the start', '\n>From the start')}`);
  });

  it('maps exits as a pure function too', () => {
    expect(commandOutcome({ code: 0, signal: null, timedOut: false, inputComplete: true })).toEqual({ result: 'ok' });
    expect(commandOutcome({ code: 69, signal: null, timedOut: false, inputComplete: true }, 'command'))
      .toEqual({ result: 'permfail', reason: 'command exited with status 69 (service unavailable)' });
    expect(commandOutcome({ code: null, signal: 'SIGTERM', timedOut: true, inputComplete: false, lastLine: 'x' }, 'mda', 300_000))
      .toEqual({ result: 'tempfail', reason: 'mda timed out after 5 minutes: "x"' });
  });
});

describe('a command still running when the agent ends', () => {
  const freshDir = tempDirPerTest();

  it('is killed with its process group: it must not finish a delivery already counted as failed', async () => {
    const dir = freshDir();
    const script = join(dir, 'agent.ts');
    const mda = join(import.meta.dirname, '..', '..', 'src', 'delivery', 'mda.ts');
    // Stands in for an agent whose socket closed: it starts a command, and exits soon after.
    writeFileSync(script, [
      `import { runCommand } from ${JSON.stringify(mda)};`,
      `void runCommand('sleep 1; touch ${dir}/finished', (async function* () { yield Buffer.from('x'); })(), { cwd: '/' });`,
      'setTimeout(() => process.exit(0), 300);',
    ].join('\n'));
    const result = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(join(dir, 'finished'))).toBe(false);
  });
});
