import { describe, expect, it } from 'vitest';
import { StorageTrouble, TROUBLE_LOG_MS } from '../../src/proc/storage-trouble.ts';
import { memoryLogger } from './helpers.ts';

function fsError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

describe('the queue explains why it cannot store messages', () => {
  it('names the spool, the error and what to do; once a minute per kind of error, with the count refused meanwhile', () => {
    const { log, lines } = memoryLogger();
    let now = 1_000_000;
    const trouble = new StorageTrouble(log, '/var/spool/smtpd', () => now);
    trouble.report(fsError('ENOSPC', 'no space left on device, write'));
    trouble.report(fsError('ENOSPC', 'no space left on device, write'));
    trouble.report(fsError('EMFILE', 'too many open files, open'));
    now += TROUBLE_LOG_MS;
    trouble.report(fsError('ENOSPC', 'no space left on device, open'));
    expect(lines).toEqual([
      'warn: queue: cannot store messages in the spool /var/spool/smtpd: ENOSPC: no space left on device, write; ' +
        'its file system is full (no space or no inodes left): make room there. ' +
        'Until then messages are refused with 421, and their clients try again later',
      'warn: queue: cannot store messages in the spool /var/spool/smtpd: EMFILE: too many open files, open; ' +
        'the queue process has no descriptor left: raise the descriptor limit (ulimit -n). ' +
        'Until then messages are refused with 421, and their clients try again later',
      'warn: queue: cannot store messages in the spool /var/spool/smtpd: ENOSPC: no space left on device, open; ' +
        'its file system is full (no space or no inodes left): make room there. ' +
        'Until then messages are refused with 421, and their clients try again later (2 since the last such line)',
    ]);
  });

  it('says nothing of errors that are not the file system\'s (an envelope refused, a closed channel)', () => {
    const { log, lines } = memoryLogger();
    const trouble = new StorageTrouble(log, '/spool');
    trouble.report(new Error('queue: envelope refused'));
    trouble.report(undefined);
    expect(lines).toEqual([]);
  });
});
