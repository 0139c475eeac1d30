/**
 * crypto, control and dispatcher, for now: they start, answer the
 * parent's ping and stop when told. Each has its place in the split, its
 * own user and its own `ps` line, so that what they will do later lands
 * in a process that already exists.
 *
 * crypto stays empty for a reason Node imposes. OpenSMTPD's crypto
 * process (klondike) holds the private keys and signs each TLS handshake
 * for the processes that speak TLS, through an RSA/ECDSA method that
 * forwards the signature to it. Node's tls module has no such hook: a
 * SecureContext needs the private key itself. So the keys live in the
 * smtp process, which terminates TLS; the parent reads them as root and
 * sends them to smtp only (see parent/daemon.ts).
 */
import type { Role, RoleContext } from '../role.ts';

export async function startIdle(ctx: RoleContext): Promise<Role> {
  ctx.log.debug(`debug: ${ctx.name}: nothing to do yet`);
  return { stop: async () => {} };
}
