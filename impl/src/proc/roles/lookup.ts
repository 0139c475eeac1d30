/**
 * The lookup process: the ruleset, built once from the configuration,
 * answering smtp's question for each RCPT TO. Tables are opened here, as
 * _smtpd: a table file the rules name must be readable by that user.
 */
import { Ruleset } from '../../lookup/index.ts';
import { lookupChannel } from '../channels/lookup.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

export async function startLookup(ctx: RoleContext): Promise<Role> {
  const ruleset = Ruleset.fromConfig(ctx.config, {
    trace: (t) => ctx.log.trace('rules', `rules: rule ${t.rule} ${t.criterion}: ${t.result}`),
  });
  const socket = ctx.links.get('smtp');
  if (!socket) throw new Error('lookup: no link to smtp');
  /**
   * One RCPT TO: the rules decide, and the answer goes back as plain
   * data, the action's name or the reply line, never the configuration's
   * objects: smtp learns what it needs to answer the client, no more.
   */
  const smtp = new Peer({
    self: 'lookup',
    peer: 'smtp',
    transport: socketTransport(socket),
    log: ctx.log,
    serves: {
      channel: lookupChannel,
      handlers: {
        'lookup.rcpt': ({ session, envelope }) => {
          const decision = ruleset.match(session, envelope);
          if ('reject' in decision) {
            return { verdict: 'reject' as const, code: decision.reject.code, reply: decision.reject.reply };
          }
          return { verdict: 'accept' as const, action: decision.action.name, rule: decision.number };
        },
      },
    },
  });
  return {
    stop: async () => {
      smtp.close();
      ruleset.close();
    },
  };
}
