/**
 * OpenSMTPD 6.8 (Debian's /usr/sbin/smtpd) in the foreground (`smtpd -d`).
 *
 * Its queue directory (/var/spool/smtpd) is compiled in, so it gets a private
 * one by running in its own mount namespace (`unshare -m`) with a temporary
 * directory bind-mounted over /var/spool/smtpd. The same namespace gets a
 * resolv.conf pointing at 127.0.0.1 (where nothing listens), so the sandbox's
 * missing DNS fails fast instead of stalling; the machine's own files are
 * never touched. Delivery: maildir, as the unprivileged DELIVERY_USER
 * (smtpd refuses to deliver as root).
 */
import { accessSync, chmodSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startGreeting } from '../proc.ts';
import { DELIVERY_USER, makeMaildir, makeTempDir, privateNamespaceArgs, runningServer, shQuote, smtpdConf, userIds } from './common.ts';
import type { RunningServer, ServerDef } from './types.ts';

const SMTPD = process.env.BENCH_OPENSMTPD ?? '/usr/sbin/smtpd';

export const opensmtpd: ServerDef = {
  name: 'opensmtpd',
  async start(): Promise<RunningServer> {
    accessSync(SMTPD, constants.X_OK);
    if (process.getuid?.() !== 0) throw new Error('needs root (smtpd, unshare -m)');
    const dir = makeTempDir('opensmtpd');
    const port = await freePort();
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    chmodSync(spool, 0o711); // smtpd checks this
    const maildir = makeMaildir(dir, userIds(DELIVERY_USER));
    const conf = join(dir, 'smtpd.conf');
    writeFileSync(conf, smtpdConf(port, maildir));
    // BENCH_OPENSMTPD_ARGS: extra flags, e.g. "-v" or "-T smtp" to see why it pauses.
    const extra = process.env.BENCH_OPENSMTPD_ARGS ?? '';
    const args = privateNamespaceArgs(dir, `${shQuote(SMTPD)} -d ${extra} -f ${shQuote(conf)}`, [[spool, '/var/spool/smtpd']]);
    const logFile = join(dir, 'smtpd.log');
    const proc = await startGreeting(args, port, 15_000, { logFile });
    const description = `unshare -m (private /var/spool/smtpd, resolv.conf -> 127.0.0.1) ${SMTPD} -d -f ${conf}`;
    return runningServer('opensmtpd', description, port, proc, { dir, maildir, logFile });
  },
};
