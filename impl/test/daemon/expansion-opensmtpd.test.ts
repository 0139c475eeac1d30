/**
 * What a recipient gets from the whole daemon and from the real
 * OpenSMTPD 6.8 when its alias, virtual entry or ~/.forward is an
 * error, or is not a target at all, given the same tables, rules and
 * session (and `forward-file` for ours, which reads no ~/.forward
 * without it). Each case
 * states both servers' replies, so that a change on either side fails;
 * where they differ, `why` says which RFC or which 6.8 bug ours follows
 * instead (the chapter "Expansion" tells the same).
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../smtp/helpers.ts';
import { startReferenceWith, unavailable as why, type OwnReference } from '../smtp/opensmtpd.ts';
import { cleanUpAfterEach, freePort, startServing, workDir, type RunningDaemon } from './helpers.ts';

if (why && process.env.CI !== undefined) throw new Error(`OpenSMTPD comparison cannot run: ${why}`);

/** Not opensmtpd.test.ts's address: the two files run at the same time. */
const DNS_ADDRESS = '127.1.53.54';

/** A user of both servers' userbase, uid and gid 52001 (nobody's on this machine), whose ~/.forward both read. */
const BOB = 52001;
/** The homes, made before either server starts: the userbase names them. */
const homes = mkdtempSync(join(tmpdir(), 'saf-homes-'));
chmodSync(homes, 0o755);

/** Writes bob's ~/.forward, his own file, mode 0644, in his own home, mode 0755: what both servers accept. */
function bobsForward(text: string): void {
  const home = join(homes, 'bob');
  mkdirSync(home, { recursive: true, mode: 0o755 });
  chownSync(home, BOB, BOB);
  writeFileSync(join(home, '.forward'), text);
  chmodSync(join(home, '.forward'), 0o644);
  chownSync(join(home, '.forward'), BOB, BOB);
}

const FILES = {
  users: `bob ${BOB}:${BOB}:${join(homes, 'bob')}\n`,
  aliases: [
    'goaway: error:421 go away',
    'quoted: "bad address@@x"',
    'codeonly: error:421',
    'spaced: a b',
    'unterminated: "unterminated',
    'doubleat: root@@x',
    'underscore: root@b_c.test',
    'escape: error:450 4.2.0 not\x1b[2J now',
    '',
  ].join('\n'),
  virtual: 'goaway@virtual.test: error:421 go away\n',
};

/** 6.8 reads every ~/.forward; ours, only where the action says `forward-file` (ours() adds it). */
const FORWARD_ACTION = 'action "fwd" mbox userbase <users>';

const RULES = (dir: string) => [
  `table aliases file:${dir}/aliases`,
  `table vmap file:${dir}/virtual`,
  `table users file:${dir}/users`,
  'action "local" mbox alias <aliases>',
  'action "virt" mbox virtual <vmap>',
  FORWARD_ACTION,
  'match from any for domain "example.org" action "local"',
  'match from any for domain "virtual.test" action "virt"',
  'match from any for domain "forward.test" action "fwd"',
];

const { running, dirs } = cleanUpAfterEach();
let reference: OwnReference | undefined;

beforeAll(async () => {
  if (!why) reference = await startReferenceWith({ files: FILES, rules: RULES }, DNS_ADDRESS);
}, 20_000);

afterAll(async () => {
  await reference?.stop();
  rmSync(homes, { recursive: true, force: true });
});

/** Our daemon with the same tables and rules. */
async function ours(): Promise<{ port: number; daemon: RunningDaemon }> {
  const port = await freePort();
  const { dir, conf, spool } = workDir(port);
  dirs.push(dir);
  mkdirSync(join(dir, 'tables'));
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(dir, 'tables', name), text);
  const rules = RULES(join(dir, 'tables')).map((line) => (line === FORWARD_ACTION ? `${line} forward-file` : line));
  writeFileSync(conf, [`listen on 127.0.0.1 port ${port} hostname mx.test`, ...rules, ''].join('\n'));
  const daemon = await startServing(conf, spool);
  running.push(daemon);
  return { port, daemon };
}

/** A line the client sends, and every reply each server gives to it; `<closed>` once it has closed the connection. */
interface Exchange {
  send: string;
  opensmtpd: string[];
  ours: string[];
}

interface Case {
  situation: string;
  /** Bob's ~/.forward, written before both servers are asked. */
  forward?: string;
  /** Why ours answers otherwise, when it does. */
  why?: string;
  exchanges: Exchange[];
}

const both = (send: string, ...replies: string[]): Exchange => ({ send, opensmtpd: replies, ours: replies });
const OK = '250 2.1.5 Destination address valid: Recipient ok';
const EXPANSION_PROBLEM = (rcpt: string) => `424 4.2.4 Mailing list expansion problem: <${rcpt}>`;

const CASES: Case[] = [
  ...['goaway@example.org', 'goaway@virtual.test'].map((rcpt): Case => ({
    situation: `${rcpt}, ${rcpt.endsWith('.org') ? 'an alias' : 'a virtual entry'} that is error:421`,
    why: 'RFC 5321 3.8 and 4.2.2: 421 means the server is closing the channel, the one reply after which it may close; '
      + '6.8 answers 421 and goes on with the session',
    exchanges: [
      both('MAIL FROM:<alice@example.com>', '250 2.0.0 Ok'),
      both(`RCPT TO:<${rcpt}>`, `421 go away: <${rcpt}>`),
      { send: 'RCPT TO:<root@example.org>', opensmtpd: [OK], ours: ['<closed>'] },
      { send: 'QUIT', opensmtpd: ['221 2.0.0 Bye', '<closed>'], ours: ['<closed>'] },
    ],
  })),
  {
    situation: 'alias members that are not targets',
    exchanges: [
      both('MAIL FROM:<alice@example.com>', '250 2.0.0 Ok'),
      ...['quoted', 'codeonly', 'spaced', 'unterminated'].map((user) => both(`RCPT TO:<${user}@example.org>`, EXPANSION_PROBLEM(`${user}@example.org`))),
      both('QUIT', '221 2.0.0 Bye', '<closed>'),
    ],
  },
  {
    situation: 'alias members that are addresses with a bad domain: root@@x, root@b_c.test',
    why: "6.8's alias_is_address() (to.c) writes a NUL over the '@' before it looks at the domain, and when the domain "
      + 'fails, alias_is_username() reads what is left, "root", and takes it: a typo in a domain sends the mail to a local user',
    exchanges: [
      both('MAIL FROM:<alice@example.com>', '250 2.0.0 Ok'),
      ...['doubleat', 'underscore'].map((user): Exchange => ({
        send: `RCPT TO:<${user}@example.org>`, opensmtpd: [OK], ours: [EXPANSION_PROBLEM(`${user}@example.org`)],
      })),
      both('QUIT', '221 2.0.0 Bye', '<closed>'),
    ],
  },
  {
    situation: 'an alias that is an error whose text has a control character (ESC)',
    why: 'a control character is no part of a target (the queue keeps none in an envelope); 6.8 sends it to the client in the reply',
    exchanges: [
      both('MAIL FROM:<alice@example.com>', '250 2.0.0 Ok'),
      { send: 'RCPT TO:<escape@example.org>', opensmtpd: ['450 4.2.0 not\x1b[2J now: <escape@example.org>'], ours: [EXPANSION_PROBLEM('escape@example.org')] },
      both('QUIT', '221 2.0.0 Bye', '<closed>'),
    ],
  },
  {
    situation: "a user's ~/.forward that is error:421",
    forward: 'error:421 4.2.1 not today\n',
    why: 'closing the session drops every recipient after this one, so only the tables may ask for it: '
      + 'from a ~/.forward, 421 is answered as 450; 6.8 answers 421 and goes on',
    exchanges: [
      both('MAIL FROM:<alice@example.com>', '250 2.0.0 Ok'),
      { send: 'RCPT TO:<bob@forward.test>', opensmtpd: ['421 4.2.1 not today: <bob@forward.test>'], ours: ['450 4.2.1 not today: <bob@forward.test>'] },
      both('RCPT TO:<root@example.org>', OK),
      both('QUIT', '221 2.0.0 Bye', '<closed>'),
    ],
  },
];

/** The replies an exchange expects, that many; `<closed>` repeats once the server has gone. */
async function heard(c: RawClient, count: number): Promise<string[]> {
  const replies: string[] = [];
  for (let i = 0; i < count; i++) replies.push(await c.reply());
  return replies;
}

describe.skipIf(why !== undefined)('expansion errors against OpenSMTPD 6.8', { timeout: 60_000 }, () => {
  it.each(CASES.map((c) => [c.situation, c] as const))('%s', async (_, testCase) => {
    if (testCase.forward !== undefined) bobsForward(testCase.forward);
    const mine = await ours();
    for (const [side, port] of [['opensmtpd', reference!.port], ['ours', mine.port]] as const) {
      const c = await RawClient.connect(port);
      expect(await c.reply()).toMatch(/^220 mx\.test ESMTP /);
      expect(await c.command('EHLO client.test')).toMatch(/^250-mx\.test Hello client\.test/);
      const transcript: string[] = [];
      for (const exchange of testCase.exchanges) {
        c.send(`${exchange.send}\r\n`);
        const replies = await heard(c, exchange[side].length);
        transcript.push(`C: ${exchange.send}\n${replies.map((r) => `S: ${r}`).join('\n')}`);
        expect(replies, `${side}${testCase.why ? `, ${testCase.why}` : ''}:\n${transcript.join('\n')}`).toEqual(exchange[side]);
      }
      c.close();
    }
  });
});
