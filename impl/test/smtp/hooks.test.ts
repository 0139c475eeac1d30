import { describe, expect, it } from 'vitest';
import type { HookContext, HookDecision, Hooks } from '../../src/smtp/index.ts';
import { ehloClient, RawClient, startServer } from './helpers.ts';

const proceed = (): HookDecision => ({ decision: 'proceed' });
const reject = (code: number, text: string): HookDecision => ({ decision: 'reject', reply: { code, enhanced: `${String(code)[0]}.7.1`, lines: [text] } });

describe('hooks', () => {
  it('are called at every phase, in order, with the session and the parameter', async () => {
    const seen: string[] = [];
    const record = (ctx: HookContext): HookDecision => {
      seen.push(`${ctx.phase}:${ctx.param}:${ctx.session.helo ?? '-'}:${ctx.session.sender ?? '-'}:${ctx.session.recipients.join(',')}`);
      return proceed();
    };
    const phases = ['connect', 'helo', 'ehlo', 'mail-from', 'rcpt-to', 'data', 'data-line', 'commit'] as const;
    const hooks: Hooks = Object.fromEntries(phases.map((p) => [p, [record]]));
    const { port, store } = await startServer({ hooks });
    const c = await RawClient.connect(port);
    await c.reply();
    await c.command('HELO first.test');
    await c.command('EHLO second.test');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    expect(await c.command('Subject: s\r\n\r\nline\r\n.')).toMatch(/^250 /);
    expect(seen).toEqual([
      'connect:127.0.0.1:-:-:',
      'helo:first.test:-:-:',
      'ehlo:second.test:first.test:-:',
      'mail-from:a@example.com:second.test:-:',
      'rcpt-to:b@example.org:second.test:a@example.com:',
      'data::second.test:a@example.com:b@example.org',
      'data-line:Subject: s:second.test:a@example.com:b@example.org',
      'data-line::second.test:a@example.com:b@example.org',
      'data-line:line:second.test:a@example.com:b@example.org',
      'commit::second.test:a@example.com:b@example.org',
    ]);
    expect(store.committed()).toHaveLength(1);
  });

  it('see the client\'s name from reverse DNS, from connect on, and no name when it has none', async () => {
    const seen: string[] = [];
    const record = (ctx: HookContext): HookDecision => (seen.push(`${ctx.phase}:${ctx.session.rdns}`), proceed());
    const hooks: Hooks = { connect: [record], 'rcpt-to': [record] };
    for (const resolveName of [async () => 'client.example.net', async () => undefined]) {
      const { port } = await startServer({ hooks, resolveName });
      const c = await ehloClient(port);
      await c.command('MAIL FROM:<a@example.com>');
      expect(await c.command('RCPT TO:<b@example.org>')).toMatch(/^250 /);
    }
    expect(seen).toEqual(['connect:client.example.net', 'rcpt-to:client.example.net', 'connect:undefined', 'rcpt-to:undefined']);
  });

  it('stop at the first decision that is not proceed', async () => {
    const calls: string[] = [];
    const hooks: Hooks = {
      'rcpt-to': [
        () => (calls.push('first'), proceed()),
        (ctx) => (calls.push('second'), ctx.param.startsWith('nobody') ? reject(550, 'Invalid recipient: <nobody@example.org>') : proceed()),
        () => (calls.push('third'), { decision: 'accept', dispatcher: 'mailboxes' }),
        () => (calls.push('fourth'), proceed()),
      ],
    };
    const { port, store } = await startServer({ hooks });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    expect(await c.command('RCPT TO:<nobody@example.org>')).toBe('550 5.7.1 Invalid recipient: <nobody@example.org>');
    expect(await c.command('RCPT TO:<joe@example.org>')).toMatch(/^250 /);
    expect(calls).toEqual(['first', 'second', 'first', 'second', 'third']);
    await c.command('DATA');
    await c.command('x\r\n.');
    expect(store.committed()[0]!.envelopes.map((e) => e.dispatcher)).toEqual(['mailboxes']);
  });

  it('without an rcpt-to hook, accept every recipient for the default action', async () => {
    const { port, store } = await startServer({ defaultDispatcher: 'relay' });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<anyone@anywhere.example>');
    await c.command('DATA');
    await c.command('x\r\n.');
    expect(store.committed()[0]!.envelopes[0]!.dispatcher).toBe('relay');
  });

  it('may rewrite addresses, keeping what the client wrote as the original recipient', async () => {
    const hooks: Hooks = {
      'mail-from': [() => ({ decision: 'rewrite', value: 'bounces@example.com' })],
      'rcpt-to': [(ctx) => ({ decision: 'rewrite', value: ctx.param.replace('alias', 'real') })],
    };
    const { port, store } = await startServer({ hooks });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<alias@example.org>');
    await c.command('DATA');
    await c.command('x\r\n.');
    const [e] = store.committed()[0]!.envelopes;
    expect(e!.sender).toEqual({ user: 'bounces', domain: 'example.com' });
    expect(e!.recipient).toEqual({ user: 'real', domain: 'example.org' });
    expect(e!.originalRecipient).toEqual({ user: 'alias', domain: 'example.org' });
  });

  it('refuse a rewrite to an invalid address with the syntax error', async () => {
    const { port } = await startServer({ hooks: { 'mail-from': [() => ({ decision: 'rewrite', value: 'not an address' })] } });
    const c = await ehloClient(port);
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe("501 5.1.7 Sender address syntax error: unexpected ' ' in address");
  });

  it('may disconnect, and a 421 or an invalid code always disconnects', async () => {
    const { port } = await startServer({
      hooks: {
        ehlo: [(ctx) => (ctx.param === 'bad.test' ? { decision: 'disconnect', reply: { code: 554, lines: ['Go away'] } } : proceed())],
        'mail-from': [(ctx) => ctx.param === 'a@x.org' ? reject(421, 'Later') : { decision: 'reject', reply: { code: 250, lines: ['not an error'] } }],
      },
    });
    const c = await RawClient.connect(port);
    await c.reply();
    expect(await c.command('EHLO bad.test')).toBe('554 Go away');
    expect(await c.closed()).toBe(true);
    const d = await ehloClient(port);
    expect(await d.command('MAIL FROM:<b@x.org>')).toBe('421 Internal server error');
    expect(await d.closed()).toBe(true);
    const e = await ehloClient(port);
    expect(await e.command('MAIL FROM:<a@x.org>')).toBe('421 4.7.1 Later');
    expect(await e.closed()).toBe(true);
  });

  it('that throw end the session with 421', async () => {
    const { port, logs } = await startServer({ hooks: { 'rcpt-to': [() => { throw new Error('lookup process gone'); }] } });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    expect(await c.command('RCPT TO:<b@example.org>')).toBe('421 4.3.0 Temporary Error');
    expect(await c.closed()).toBe(true);
    expect(logs.some((l) => l.endsWith('smtp internal error: lookup process gone'))).toBe(true);
  });

  it('at connect may refuse the session', async () => {
    const { port } = await startServer({ hooks: { connect: [() => reject(554, 'No SMTP service here')] } });
    const c = await RawClient.connect(port);
    expect(await c.reply()).toBe('554 5.7.1 No SMTP service here');
    expect(await c.closed()).toBe(true);
  });

  it('at data-line may rewrite lines or refuse the message at its end', async () => {
    const { port, store } = await startServer({
      hooks: {
        'data-line': [(ctx) => {
          if (ctx.param === 'Subject: secret') return reject(550, 'Content refused');
          return ctx.param === 'hello' ? { decision: 'rewrite', value: 'HELLO\nWORLD' } : proceed();
        }],
      },
    });
    const c = await ehloClient(port);
    for (const [content, reply] of [['Subject: ok\r\n\r\nhello\r\n..dot', /^250 /], ['Subject: secret\r\n\r\nhello', /^550 5\.7\.1 Content refused$/]] as const) {
      await c.command('MAIL FROM:<a@example.com>');
      await c.command('RCPT TO:<b@example.org>');
      await c.command('DATA');
      expect(await c.command(`${content}\r\n.`)).toMatch(reply);
    }
    expect(store.messages.map((m) => m.state)).toEqual(['committed', 'aborted']);
    expect(store.messages[0]!.text).toMatch(/\r\nSubject: ok\r\n\r\nHELLO\r\nWORLD\r\n\.dot\r\n$/);
  });

  it('at commit may refuse the message', async () => {
    const { port, store } = await startServer({ hooks: { commit: [() => reject(550, 'Spam')] } });
    const c = await ehloClient(port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    expect(await c.command('x\r\n.')).toBe('550 5.7.1 Spam');
    expect(store.messages[0]!.state).toBe('aborted');
    expect(await c.command('MAIL FROM:<a@example.com>')).toBe('250 2.0.0 Ok');
  });
});
