import { describe, expect, it } from 'vitest';
import { field } from '../../src/bounce/mime.ts';
import { duration } from '../../src/bounce/notice.ts';
import { shouldBounce, shouldReportSuccess, shouldWarn, whyNoNotice } from '../../src/bounce/policy.ts';
import type { ReportAction } from '../../src/bounce/dsn.ts';
import { diagnosticCode, statusOf } from '../../src/bounce/status.ts';
import type { DsnRequest, MailAddress } from '../../src/queue/types.ts';

const alice: MailAddress = { user: 'alice', domain: 'example.com' };

describe('who is told', () => {
  // [case, sender, DSN NOTIFY, bounce on failure?, warn on delay?, report on success?]
  it.each<[string, MailAddress | null, DsnRequest['notify'], boolean, boolean, boolean]>([
    ['no DSN request: failures and delays (RFC 3461 4.1 leaves it to us)', alice, undefined, true, true, false],
    ['NOTIFY=FAILURE,DELAY', alice, ['FAILURE', 'DELAY'], true, true, false],
    ['NOTIFY=FAILURE', alice, ['FAILURE'], true, false, false],
    ['NOTIFY=DELAY', alice, ['DELAY'], false, true, false],
    ['NOTIFY=SUCCESS', alice, ['SUCCESS'], false, false, true],
    ['NOTIFY=SUCCESS,FAILURE', alice, ['SUCCESS', 'FAILURE'], true, false, true],
    ['NOTIFY=NEVER', alice, ['NEVER'], false, false, false],
    ['a bounce (null sender): never, whatever it asked', null, undefined, false, false, false],
    ['a bounce asking for failures', null, ['FAILURE', 'DELAY'], false, false, false],
    ['a bounce asking for success: never a report about a report', null, ['SUCCESS'], false, false, false],
  ])('%s', (_name, sender, notify, bounce, warn, success) => {
    const envelope = { sender, ...(notify && { dsn: { notify } }) };
    expect(shouldBounce(envelope)).toBe(bounce);
    expect(shouldWarn(envelope)).toBe(warn);
    expect(shouldReportSuccess(envelope)).toBe(success);
  });

  it('says why, for the log line that replaces the notice', () => {
    expect(whyNoNotice({ sender: null }, 'failure')).toBe('the sender is <>: bounces of bounces are never generated');
    expect(whyNoNotice({ sender: alice, dsn: { notify: ['NEVER'] } }, 'failure')).toBe('DSN NOTIFY=NEVER asks for no failure notice');
    expect(whyNoNotice({ sender: alice, dsn: { notify: ['FAILURE'] } }, 'delay')).toBe('DSN NOTIFY=FAILURE asks for no delay notice');
    expect(whyNoNotice({ sender: alice }, 'failure')).toBeUndefined();
  });
});

describe('the status of a recipient', () => {
  it.each<[string | undefined, ReportAction, string | undefined, string]>([
    ['550 5.1.1 <bob@example.org>: no such user', 'failed', undefined, '5.1.1'],
    ['550-5.7.1 first line\n550 5.7.1 second line', 'failed', undefined, '5.7.1'],
    ['452 4.2.2 mailbox full', 'delayed', undefined, '4.2.2'],
    ['554 Transaction failed', 'failed', undefined, '5.0.0'],
    ['421 Service not available', 'delayed', undefined, '4.0.0'],
    ['421 Service not available', 'failed', undefined, '4.0.0'],
    ['550 4.1.1 mismatched classes', 'failed', undefined, '5.0.0'],
    ['550 5.1.10 three-digit detail', 'failed', undefined, '5.1.10'],
    ['mailbox is full', 'failed', undefined, '5.0.0'],
    ['mailbox is full', 'delayed', undefined, '4.0.0'],
    [undefined, 'delivered', undefined, '2.0.0'],
    [undefined, 'delivered', '2.1.5', '2.1.5'],
    ['550 5.1.1 x', 'delivered', '5.1.1', '2.0.0'],
    [undefined, 'failed', undefined, '5.0.0'],
    ['421 4.3.0 try later', 'failed', '4.4.7', '4.4.7'],
    ['550 5.1.1 x', 'failed', 'not-a-status', '5.1.1'],
  ])('%j (%s, given %s) is %s', (diagnostic, action, given, status) => {
    expect(statusOf(diagnostic, action, given)).toBe(status);
  });

  it.each([
    ['550 5.1.1 no such user', 'smtp; 550 5.1.1 no such user'],
    ['550-first\r\n550 second', 'smtp; 550-first 550 second'],
    ['554', 'smtp; 554'],
    ['mda exited with status 75', 'X-Unix; mda exited with status 75'],
  ])('labels %j as %j', (text, code) => {
    expect(diagnosticCode(text)).toBe(code);
  });
});

describe('how long a delay reads', () => {
  it.each([
    [4 * 3600, '4 hours'],
    [3600, '1 hour'],
    [30 * 60, '30 minutes'],
    [90 * 60, '1 hour and 30 minutes'],
    [86400 + 2 * 3600 + 5 * 60, '1 day and 2 hours'],
    [2 * 86400 + 5 * 60, '2 days'],
    [0, '0 seconds'],
  ])('%i seconds: %s', (seconds, text) => {
    expect(duration(seconds)).toBe(text);
  });
});

describe('folding a field', () => {
  it.each([
    ['a short value', 'fits on one line'],
    ['a long value', Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ')],
    ['runs of spaces', `${'x'.repeat(70)}   ${'y'.repeat(77)}    z`],
    ['a word longer than a line', `smtp; 550 ${'w'.repeat(2000)}`],
  ])('folds %s so that it unfolds to the same text, in lines of at most 998 octets, none of them blank', (_name, value) => {
    const folded = field('Diagnostic-Code', value);
    const lines = folded.split('\r\n');
    for (const line of lines) {
      expect(line.length).toBeLessThanOrEqual(998);
      expect(line.trim()).not.toBe('');
    }
    for (const line of lines.slice(1)) expect(line).toMatch(/^ /);
    const unfolded = folded.replace(/\r\n/g, '').slice('Diagnostic-Code: '.length);
    if (value.length < 900) expect(unfolded).toBe(value);
    else expect(unfolded.replace(/ /g, '')).toBe(value.replace(/ /g, ''));
  });
});
