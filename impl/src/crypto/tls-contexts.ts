/**
 * The TLS side of a listener: one SecureContext per pki, and the choice
 * among them by the name the client asks for (SNI, RFC 6066).
 *
 * The SMTP engine takes the function tlsContextsFor() returns: given the
 * name a client asks for, or none, it gives the context to present. To
 * start TLS on a socket with it (after STARTTLS, or at once for smtps):
 *
 *     const contexts = tlsContextsFor(config, listener);
 *     const secure = await acceptTls(socket, contexts);   // client-hello.ts
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import type { Config, GlobalOption, ListenDecl } from '../config/ast.ts';
import { loadPkis, type LoadedPki } from './pki.ts';

/** The context to present to a client that asked for `servername`, or the listener's own without one. */
export type TlsContextSelector = (servername?: string) => SecureContext;

export interface TlsContextOptions {
  /** Pkis already loaded (by loadPkis()), to share between listeners; loaded from the config otherwise. */
  pkis?: ReadonlyMap<string, LoadedPki>;
  /** The server's host name, whose pki a listener without `pki` or `hostname` uses; os.hostname() otherwise. */
  hostname?: string;
}

/**
 * The contexts of `listener`, or undefined if it offers no TLS (neither
 * `tls`, `tls-require` nor `smtps`).
 *
 * Its own pki is the one it names with `pki`; without one, OpenSMTPD uses
 * the pki named after the host name the listener announces (its
 * `hostname`, else the server's). Every pki of the configuration can be
 * chosen by SNI, as OpenSMTPD looks a client's name up among all pkis,
 * not only the listener's.
 *
 * Every context refuses TLS before 1.2, and uses the `smtp ciphers` list
 * when the configuration has one (Node's default list otherwise).
 */
export function tlsContextsFor(
  config: Config,
  listener: ListenDecl,
  options: TlsContextOptions = {},
): TlsContextSelector | undefined {
  if (listener.tls === undefined) return undefined;
  const pkis = options.pkis ?? loadPkis(config);
  const ownName = listener.pki ?? listener.hostname ?? options.hostname ?? hostname();
  const own = pkis.get(ownName);
  if (own === undefined) {
    throw new Error(
      `${listener.loc.file}:${listener.loc.line}: the listener offers TLS, but there is no pki ${ownName}` +
        (listener.pki === undefined ? ': name one with `pki NAME`' : ''),
    );
  }

  const settings = contextSettings(config, listener);
  const contexts = new Map<LoadedPki, SecureContext>();
  for (const pki of pkis.values()) contexts.set(pki, makeContext(pki, settings));
  const candidates = [own, ...[...pkis.values()].filter((pki) => pki !== own)];

  return (servername) => contexts.get(selectPki(candidates, servername) ?? own)!;
}

/**
 * Node's SNICallback for a selector, for a tls.Server. Only reliable when
 * every pki has the same key type (all RSA or all ECDSA): see
 * client-hello.ts for why, and acceptTls() for what works with both.
 */
export function sniCallback(select: TlsContextSelector): NonNullable<TlsOptions['SNICallback']> {
  return (servername, done) => done(null, select(servername));
}

// #region select-pki
/**
 * The pki to present to a client that asked for `servername`, or
 * undefined to keep the listener's own.
 *
 * OpenSMTPD 6.8 looks the name up among the pki names, exactly. We also
 * look at the names each certificate is for (`names`), and accept a
 * wildcard: `*.example.org` covers `mx.example.org`, but neither
 * `example.org` nor `a.mx.example.org` (RFC 6125). A wildcard is tried only
 * when no pki has the exact name, so a certificate made for one host wins
 * over one made for many. `candidates` lists the listener's own pki first,
 * so that it wins a tie.
 */
export function selectPki<P extends { names: readonly string[] }>(
  candidates: readonly P[],
  servername: string | undefined,
): P | undefined {
  if (!servername) return undefined;
  const wanted = servername.toLowerCase().replace(/\.$/, '');
  return (
    candidates.find((pki) => pki.names.includes(wanted)) ??
    candidates.find((pki) => pki.names.some((name) => wildcardCovers(name, wanted)))
  );
}

function wildcardCovers(pattern: string, host: string): boolean {
  const dot = host.indexOf('.');
  return pattern.startsWith('*.') && dot > 0 && host.slice(dot) === pattern.slice(1);
}
// #endregion select-pki

type Settings = Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'ca'>;

/** What every context of the listener shares: protocol versions, ciphers, and the CA for client certificates. */
function contextSettings(config: Config, listener: ListenDecl): Settings {
  const settings: Settings = { minVersion: 'TLSv1.2' };
  const ciphers = config.options.findLast(isCiphers)?.ciphers;
  if (ciphers !== undefined) settings.ciphers = ciphers;
  if (listener.ca !== undefined) {
    const ca = config.cas.findLast((c) => c.name === listener.ca);
    if (ca === undefined) throw new Error(`${listener.loc.file}:${listener.loc.line}: there is no ca ${listener.ca}`);
    settings.ca = readFileSync(ca.cert, 'utf8');
  }
  return settings;
}

function isCiphers(option: GlobalOption): option is Extract<GlobalOption, { kind: 'smtp ciphers' }> {
  return option.kind === 'smtp ciphers';
}

function makeContext(pki: LoadedPki, settings: Settings): SecureContext {
  try {
    return createSecureContext({
      ...settings,
      cert: pki.chain,
      key: pki.key,
      // `dhe auto` (and `legacy`, whose 1024-bit group OpenSSL 3 refuses) enable
      // finite-field Diffie-Hellman; by default only elliptic curves are offered.
      ...(pki.dhe === 'auto' || pki.dhe === 'legacy' ? { dhparam: 'auto' } : {}),
    });
  } catch (err) {
    const where = settings.ciphers === undefined ? '' : ` with smtp ciphers "${settings.ciphers}"`;
    throw new Error(`pki ${pki.name}: cannot make a TLS context${where}: ${(err as Error).message}`);
  }
}
