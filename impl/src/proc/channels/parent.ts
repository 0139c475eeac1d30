/**
 * What a child may ask the parent, the one process that stays root: the
 * things that need root because they touch a user's files. lookup asks
 * for a user's ~/.forward (OpenSMTPD's parent_forward_open); the
 * dispatcher asks for a delivery agent running as a user (its forkmda).
 * The parent answers each child only the requests that child's role
 * needs, and checks every argument as it would a stranger's.
 */
import { channel, type RequestOf } from '../protocol.ts';
import { PROCESS_NAMES } from '../processes.ts';
import { hex, object, oneOf, optional, string, type Infer } from '../schema.ts';
import { userRecord } from './delivery.ts';

const forwardFile = object({
  status: oneOf(['ok', 'missing', 'refused', 'error']),
  path: optional(string),
  content: optional(string),
  reason: optional(string),
});
export type WireForwardFile = Infer<typeof forwardFile>;

export const parentChannel = channel('parent', {
  'parent.forward.open': { request: object({ user: userRecord }), response: forwardFile },
  /**
   * Start a delivery agent as `user`. The parent hands the dispatcher its
   * end of the agent's socket with a `proc.agent` request carrying the
   * same token before it answers this one. `refused` says why it will
   * never start one for this user (root, when no action delivers to an
   * mbox): a permanent failure of the delivery, not a passing one.
   * `full` says that as many agents run as the parent allows in all
   * (MAX_AGENTS): none now, a passing failure.
   */
  'parent.agent.open': {
    request: object({ token: hex(16), user: userRecord }),
    response: object({ pid: optional(string), refused: optional(string), full: optional(string) }),
  },
  /**
   * The child dropped its channel to `peer`, a neighbour that sent what
   * breaks the framing. Both processes still run, but the two can no
   * longer talk: the parent stops the daemon, as it does when a child
   * dies, rather than leave it up and half-wired. Any child may say so;
   * one that wanted the daemon down could as well exit.
   */
  'parent.link.lost': { request: object({ peer: oneOf(PROCESS_NAMES), reason: string }), response: object({}) },
});
export type ParentRequest = RequestOf<typeof parentChannel['calls']>;
