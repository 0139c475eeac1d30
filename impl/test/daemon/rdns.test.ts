/**
 * Reverse DNS in the real daemon: a real DNS server, dnsmasq on 127.0.0.1
 * and a free port, which the smtp process asks through SMTPD_NAMESERVERS,
 * and a real client, swaks, connecting from two loopback addresses: one
 * whose name is mx.example.test, one with no name. (Not from 127.0.0.1:
 * its name comes from /etc/hosts, which the resolver reads before asking
 * DNS.) The rules say `match from rdns`, so the name decides, in the
 * lookup process, whether the recipient is accepted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpAfterEach, committedContent, freePort, startDaemon, workDir } from './helpers.ts';

const DNSMASQ = '/usr/sbin/dnsmasq';
const missing = [DNSMASQ, '/usr/bin/swaks'].filter((p) => !existsSync(p));
const why = missing.length > 0 ? `${missing.join(' and ')} not installed (apt-get install dnsmasq-base swaks)` : undefined;
if (why && process.env.CI !== undefined) throw new Error(`the reverse DNS tests cannot run: ${why}`);
if (why) console.warn(`skipping the reverse DNS tests: ${why}`);

const NAMED = '127.0.0.2';
const NAMELESS = '127.0.0.3';
const NAME = 'mx.example.test';

const { running, dirs } = cleanUpAfterEach();
let dnsmasq: ChildProcess | undefined;
let dnsmasqLog = '';
let nameservers = '';

/** dnsmasq in the foreground, answering from its command line alone: one PTR record and its A record. */
beforeAll(async () => {
  if (why) return;
  const port = await freePort();
  nameservers = `127.0.0.1:${port}`;
  dnsmasq = spawn(DNSMASQ, [
    '--no-daemon', '--conf-file=/dev/null', '--pid-file=', '--no-resolv', '--no-hosts', '--log-queries',
    `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    `--ptr-record=${NAMED.split('.').reverse().join('.')}.in-addr.arpa,${NAME}`, `--address=/${NAME}/${NAMED}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  dnsmasq.stdout!.on('data', (d: Buffer) => (dnsmasqLog += d.toString()));
  dnsmasq.stderr!.on('data', (d: Buffer) => (dnsmasqLog += d.toString()));
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([nameservers]);
  for (let tries = 0; ; tries++) {
    if ((await resolver.reverse(NAMED).catch((): string[] => [])).includes(NAME)) break;
    if (tries === 50 || dnsmasq.exitCode !== null) throw new Error(`dnsmasq does not answer:\n${dnsmasqLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 30_000);

afterAll(() => {
  dnsmasq?.kill('SIGTERM');
});

/** swaks from `source`, to the end of the session; its transcript, whatever its exit status. */
function swaks(port: number, source: string, token: string): string {
  const r = spawnSync('swaks', [
    '--server', '127.0.0.1', '--port', String(port), '--local-interface', source, '--helo', 'client.example.test',
    '--from', 'alice@example.net', '--to', 'bob@example.com', '--body', `token ${token}`,
  ], { encoding: 'utf8', timeout: 20_000 });
  return `${r.stdout}${r.stderr}`;
}

describe.skipIf(why !== undefined)('reverse DNS', { timeout: 60_000 }, () => {
  it('gives the rules and the Received: field the name DNS gives the client, and <unknown> without one', async () => {
    const port = await freePort();
    const { dir, conf, spool } = workDir(port);
    dirs.push(dir);
    writeFileSync(conf, [
      `listen on 127.0.0.1 port ${port}`,
      'action "relay" relay',
      `match from rdns "${NAME}" for any action "relay"`,
      'match from any for any reject',
      '',
    ].join('\n'));
    const daemon = startDaemon(['-d', '-v', '-f', conf, '--spool', spool], { env: { ...process.env, SMTPD_NAMESERVERS: nameservers } });
    running.push(daemon);
    await daemon.waitFor(/processes started/);

    const named = swaks(port, NAMED, 'rdns-named-5d1c');
    expect(named).toContain('<-  250 2.1.5 Destination address valid: Recipient ok');
    expect(named).toMatch(/<- {2}250 2\.0\.0 [0-9a-f]{8} Message accepted for delivery/);
    await daemon.waitFor(new RegExp(`^[0-9a-f]{16} smtp connected address=${NAMED} host=${NAME}$`));
    expect(committedContent(spool)).toContain(`Received: from client.example.test (${NAME} [${NAMED}])\r\n`);

    const nameless = swaks(port, NAMELESS, 'rdns-nameless-8e2f');
    expect(nameless).toMatch(/<\*\* 550 .*bob@example\.com/);
    await daemon.waitFor(new RegExp(`^[0-9a-f]{16} smtp connected address=${NAMELESS} host=<unknown>$`));
    expect(committedContent(spool)).not.toContain('rdns-nameless-8e2f');
    expect(dnsmasqLog).toContain(`query[PTR] ${NAMED.split('.').reverse().join('.')}.in-addr.arpa`);
  });
});
