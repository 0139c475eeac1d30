/**
 * The parent's answers to its children, called directly: what each may
 * ask, and whose word it takes for an account.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parser.ts';
import { createLogger } from '../../src/log/index.ts';
import { parentServices } from '../../src/parent/services.ts';

function services() {
  const { config, errors } = parseConfig('action "local" maildir\nmatch for local action "local"\n', { file: 'smtpd.conf' });
  expect(errors).toEqual([]);
  const lines: string[] = [];
  const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground', write: (l) => lines.push(l) });
  const forChild = parentServices({
    config, log, verbose: 0, trace: new Set(), foreground: true,
    supervisor: () => { throw new Error('no supervisor in this test'); },
  });
  return { forChild, lines };
}

describe('parent.forward.open', () => {
  it("reads the ~/.forward of an account the system has, as it has it", async () => {
    const { forChild } = services();
    const answer = await forChild('lookup')['parent.forward.open']({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' } }, undefined);
    expect(answer).toEqual({ status: 'missing' });
  });

  it('refuses an account no userbase has: a known name with another home, or a uid of its own choosing', async () => {
    const { forChild, lines } = services();
    const open = forChild('lookup')['parent.forward.open'];
    await expect(open({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/root' } }, undefined))
      .rejects.toThrow('no userbase of smtpd.conf has the account nobody (uid 65534, home /root)');
    await expect(open({ type: 'parent.forward.open', user: { name: 'nobody', uid: 0, gid: 0, home: '/nonexistent' } }, undefined))
      .rejects.toThrow(/no userbase/);
    expect(lines[0]).toMatch(/^warn: smtpd: refusing to read ~\/\.forward of nobody \(uid 65534, home \/root\)/);
  });

  it('answers lookup only', async () => {
    const { forChild } = services();
    await expect(forChild('smtp')['parent.forward.open']({ type: 'parent.forward.open', user: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' } }, undefined))
      .rejects.toThrow('smtp may not ask the parent to open a ~/.forward');
  });
});
