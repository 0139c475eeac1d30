/**
 * Our smtpd, started by SAF_SMTPD_CMD (default below, run from the repository
 * root through /bin/sh, in the same private-resolver mount namespace as the
 * others). The tokens CONF, DIR and PORT are replaced by the
 * config file, a private spool directory and the port. The config is the
 * same smtpd.conf the OpenSMTPD run uses: listen on 127.0.0.1, deliver
 * everything to one maildir.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startGreeting } from '../proc.ts';
import { DELIVERY_USER, makeMaildir, makeTempDir, privateNamespaceArgs, runningServer, smtpdConf, userIds } from './common.ts';
import type { RunningServer, ServerDef } from './types.ts';

export const DEFAULT_OURS_CMD = 'node impl/bin/smtpd.mjs -d -f CONF --spool DIR';
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Our smtpd with the queue backend `queue` (`-B queue=NAME`); named `ours` with the default, `fs`. */
export function oursWith(queue: string): ServerDef {
  const name = queue === 'fs' ? 'ours' : `ours/${queue}`;
  const backend = queue === 'fs' ? '' : ` -B queue=${queue}`;
  return {
    name,
    start: () => startOurs(name, `${process.env.SAF_SMTPD_CMD ?? DEFAULT_OURS_CMD}${backend}`),
  };
}

export const ours: ServerDef = oursWith('fs');

async function startOurs(name: string, template: string): Promise<RunningServer> {
  const dir = makeTempDir('ours');
  const port = await freePort();
  const spool = join(dir, 'spool');
  mkdirSync(spool, { mode: 0o711 });
  const maildir = makeMaildir(dir, userIds(DELIVERY_USER));
  const conf = join(dir, 'smtpd.conf');
  writeFileSync(conf, smtpdConf(port, maildir));
  const cmd = template.replace(/\b(CONF|DIR|PORT)\b/g, (t) => (t === 'CONF' ? conf : t === 'DIR' ? spool : String(port)));
  const logFile = join(dir, 'smtpd.log');
  const proc = await startGreeting(privateNamespaceArgs(dir, cmd), port, 20_000, { logFile, cwd: repoRoot });
  return runningServer(name, `unshare -m (resolv.conf -> 127.0.0.1) ${cmd} (cwd ${repoRoot})`, port, proc, { dir, maildir, logFile });
}
