/**
 * The `mbox` method on a system whose /var/mail is Debian's: root:mail,
 * mode 2775, where the agent, running as the recipient, can create
 * nothing. The daemon runs as root in a mount namespace of its own
 * (`unshare -m`) with a fresh directory mounted on /var/mail, so that
 * the machine's own mailboxes are never touched.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canMountVarMail, cleanUpAfterEach, debianMailSpool, freePort, startDaemonWithVarMail, workDir } from './helpers.ts';

const { running, dirs } = cleanUpAfterEach();

/** uid and gid of a system account, from /etc/passwd. */
function account(name: string): { uid: number; gid: number } {
  const m = new RegExp(`^${name}:[^:]*:(\\d+):(\\d+):`, 'm').exec(readFileSync('/etc/passwd', 'utf8'));
  if (!m) throw new Error(`no account ${name}`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** A work directory with mail/ as Debian ships /var/mail, and the daemon serving with it mounted there. */
async function serveWithSpool(userbase?: string) {
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  const mail = debianMailSpool(dir);
  if (userbase !== undefined) writeFileSync(join(dir, 'users'), userbase);
  writeFileSync(conf, [
    ...(userbase !== undefined ? [`table users file:${join(dir, 'users')}`] : []),
    `listen on 127.0.0.1 port ${port}`,
    `action "local" mbox${userbase !== undefined ? ' userbase <users>' : ''}`,
    'match from any for domain "example.org" action "local"',
    '',
  ].join('\n'));
  const daemon = startDaemonWithVarMail(['-d', '-v', '-f', conf, '--spool', spool], mail);
  running.push(daemon);
  await daemon.waitFor(/processes started/);
  return { port, dir, mail, daemon };
}

function send(port: number, to: string) {
  const sent = spawnSync('swaks', [
    '--server', `127.0.0.1:${port}`, '--helo', 'client.example.org', '--from', 'alice@example.org', '--to', to,
    '--h-Subject', 'mbox test', '--body', 'hello from the mbox test',
  ], { encoding: 'utf8', timeout: 30_000 });
  expect(sent.stdout).toMatch(/<- {2}250 .*Message accepted/);
}

describe.runIf(canMountVarMail)("mbox into Debian's /var/mail (root:mail 2775)", { timeout: 60_000 }, () => {
  it('a missing mailbox is made by the parent, 0600 and owned by the user, and the agent appends to it', async () => {
    const { port, mail, daemon } = await serveWithSpool();
    send(port, 'nobody@example.org');
    await daemon.waitFor(/mda delivery .*to=<nobody@example.org> .*user=nobody .*result=Ok stat=Delivered/);
    const box = lstatSync(join(mail, 'nobody'));
    const nobody = account('nobody');
    expect({ file: box.isFile(), mode: (box.mode & 0o7777).toString(8), uid: box.uid, gid: box.gid })
      .toEqual({ file: true, mode: '600', uid: nobody.uid, gid: nobody.gid });
    const text = readFileSync(join(mail, 'nobody'), 'utf8');
    expect(text).toMatch(/^From alice@example\.org /);
    expect(text).toContain('hello from the mbox test');
    expect(existsSync(join(mail, 'nobody.lock'))).toBe(false);
  });

  it('a symbolic link planted at the mailbox is refused, and the file it points to is left alone', async () => {
    const { port, dir, mail, daemon } = await serveWithSpool();
    // A file the recipient could write: only the refusal keeps the mail out of it.
    const games = account('games');
    const target = join(dir, 'target');
    writeFileSync(target, 'not a mailbox\n', { mode: 0o600 });
    chownSync(target, games.uid, games.gid);
    symlinkSync(target, join(mail, 'games'));
    send(port, 'games@example.org');
    const line = await daemon.waitFor(/mda delivery .*to=<games@example.org> .*result=TempFail/);
    expect(line).toContain(`mbox /var/mail/games is a symbolic link; refusing to follow it`);
    expect(readFileSync(target, 'utf8')).toBe('not a mailbox\n');
    expect(lstatSync(join(mail, 'games')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(mail, 'games.lock'))).toBe(false);
  });

  it('two accounts with one uid share an agent, and each gets its own mailbox', async () => {
    // Virtual users in a userbase often share one system uid; the
    // dispatcher keeps one agent per uid, so the parent must lock the
    // mailbox of whichever of them a delivery is for.
    const nobody = account('nobody');
    const { port, mail, daemon } = await serveWithSpool([
      `alice ${nobody.uid}:${nobody.gid}:/nonexistent`,
      `bob ${nobody.uid}:${nobody.gid}:/nonexistent`,
      '',
    ].join('\n'));
    send(port, 'alice@example.org');
    await daemon.waitFor(/mda delivery .*to=<alice@example.org> .*result=Ok stat=Delivered/);
    send(port, 'bob@example.org');
    await daemon.waitFor(/mda delivery .*to=<bob@example.org> .*result=Ok stat=Delivered/);
    for (const name of ['alice', 'bob']) {
      const box = lstatSync(join(mail, name));
      expect({ name, uid: box.uid, mode: (box.mode & 0o7777).toString(8) }).toEqual({ name, uid: nobody.uid, mode: '600' });
      expect(readFileSync(join(mail, name), 'utf8')).toContain('hello from the mbox test');
    }
  });
});
