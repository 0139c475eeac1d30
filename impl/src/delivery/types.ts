/**
 * The delivery agents' vocabulary: what a local delivery is asked to do,
 * and how it ended. The dispatcher builds a DeliveryRequest from an
 * envelope and its action; an agent (maildir, mbox, mda, lmtp, file,
 * command) carries it out and answers with a DeliveryOutcome, which the
 * scheduler turns into "done", "try again later" or "bounce".
 */
import type { LocalMethod, LocalOptions } from '../config/index.ts';
import type { Envelope } from '../queue/types.ts';

/** The account a delivery runs as, from the action's userbase (getpwnam by default). */
export interface UserRecord {
  name: string;
  uid: number;
  gid: number;
  /** The home directory: where `~` in a maildir path and ~/.forward point. */
  home: string;
  shell?: string;
}

/**
 * What to do for one envelope. `method` is the action's, for a `mailbox`
 * delivery; a `file` or `command` delivery (from an alias or ~/.forward)
 * ignores it and appends to the file or pipes to the command.
 */
export interface DeliveryRequest {
  envelope: Envelope;
  /** The action's name (the envelope's dispatcher) and method. */
  action: string;
  method: LocalMethod;
  user: UserRecord;
  /** The action's `wrapper` command, already looked up (`mda wrapper NAME "cmd"`). */
  wrapper?: string;
  /** The daemon's host name, for `Delivered-To`-style headers and %{} variables. */
  hostname: string;
  /**
   * The action's options, for the safety net (mayRunCommand): a `command`
   * delivery runs only if its source is marked `allow-exec` here. Absent
   * means no command from an alias, a virtual map or ~/.forward may run.
   */
  actionOptions?: LocalOptions;
  /** `smtp sub-addr-delim`, for the `strip` modifier of %{} variables; `+` by default. */
  subaddressDelimiter?: string;
}

/**
 * How a delivery ended. `tempfail`: try again later (the disk is full,
 * the mailbox is locked, the MDA exited EX_TEMPFAIL). `permfail`: it will
 * never work (no such user, the MDA exited with a permanent code); the
 * sender gets a bounce. `reason` is one line, for the log and the bounce.
 */
export type DeliveryOutcome =
  | { result: 'ok'; detail?: string }
  | { result: 'tempfail' | 'permfail'; reason: string };
