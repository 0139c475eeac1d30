/**
 * Haraka 3 from this package's dependencies, in a temporary "installed"
 * directory whose config we write ourselves: listen on 127.0.0.1, only our
 * queue_maildir plugin (accepts any recipient, writes tmp -> fsync -> rename
 * -> fsync dir before 250), no DNS-using plugins. `nodes=0` runs one process
 * without cluster; `nodes=2` forks two cluster workers (one per core here).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startGreeting } from '../proc.ts';
import { DELIVERY_USER, makeMaildir, makeTempDir, privateNamespaceArgs, runningServer, shQuote } from './common.ts';
import type { RunningServer, ServerDef } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const pluginSource = join(here, '..', '..', 'haraka-plugins', 'queue_maildir.js');

function harakaHome(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('Haraka/package.json'));
}

export function haraka(nodes: number): ServerDef {
  const name = nodes === 0 ? 'haraka/1p' : `haraka/${nodes}w`;
  return {
    name,
    async start(): Promise<RunningServer> {
      const home = harakaHome();
      const bin = join(home, 'bin', 'haraka');
      const defaults = (f: string): string => readFileSync(join(home, 'config', f), 'utf8');
      const dir = makeTempDir(name.replace('/', '-'));
      const port = await freePort();
      const maildir = makeMaildir(dir);
      const cfg = join(dir, 'config');
      mkdirSync(cfg);
      mkdirSync(join(dir, 'plugins'));
      mkdirSync(join(dir, 'queue'));
      copyFileSync(pluginSource, join(dir, 'plugins', 'queue_maildir.js'));
      // Haraka reads an installed directory's config/ only (no fallback to its
      // defaults), so start from its default files, as `haraka -i` does.
      const files: Record<string, string> = {
        'smtp.ini': [
          `listen=127.0.0.1:${port}`,
          `nodes=${nodes}`,
          'inactivity_timeout=60',
          'graceful_shutdown=false',
          'force_shutdown_timeout=2',
          // Set, so nothing ever asks a STUN server (the optional @msimerson/stun) for it.
          'public_ip=127.0.0.1',
          '',
          defaults('smtp.ini'),
        ].join('\n'),
        'connection.ini': defaults('connection.ini'),
        // One plugin: no rdns/dnsbl/spf/helo/is_resolvable plugins. (The core
        // still does its reverse lookup per connection; in the private
        // namespace it fails at once against 127.0.0.1.)
        plugins: 'queue_maildir\n',
        'queue_maildir.ini': `[main]\npath=${maildir}\n`,
        me: 'bench.localhost\n',
        host_list: 'localhost\n',
        // Haraka's shipped level is info: ~12 lines per message (every hook).
        // notice keeps its per-command summary lines (~5 per message), about
        // what `smtpd -d` writes; BENCH_HARAKA_LOGLEVEL overrides.
        'log.ini': defaults('log.ini').replace(/^level=.*$/m, `level=${process.env.BENCH_HARAKA_LOGLEVEL ?? 'notice'}`),
        'outbound.ini': `[main]\nqueue_dir=${join(dir, 'queue')}\n`,
      };
      for (const [f, text] of Object.entries(files)) writeFileSync(join(cfg, f), text);
      const logFile = join(dir, 'haraka.log');
      const args = privateNamespaceArgs(dir, [process.execPath, bin, '-c', dir].map(shQuote).join(' '));
      const proc = await startGreeting(args, port, 20_000, { logFile, cwd: dir });
      const description = `unshare -m (resolv.conf -> 127.0.0.1) node ${bin} -c ${dir} (nodes=${nodes}, plugins: queue_maildir)`;
      return runningServer(name, description, port, proc, { dir, maildir, logFile });
    },
  };
}
