/**
 * How an expansion fails: the limits past which a tree is refused, the
 * replies the client can get, and the Failure that carries one of them
 * with the log line that says why. Any step of the walk may throw a
 * Failure; Expander.expand() catches it and answers the RCPT with it.
 */

// #region expansion-limits
/** A node this deep is refused: OpenSMTPD's EXPAND_DEPTH (lka_session.c). The recipient itself is depth 0. */
export const EXPAND_DEPTH = 10;
/**
 * At most this many nodes per RCPT (ours: OpenSMTPD 6.8 has no overall
 * limit). Large enough for a mailing list kept in an alias, small enough
 * that one RCPT cannot make the lookup process build an unbounded tree.
 * Over it, the same permanent error as a tree too deep: both mean the
 * aliases are built wrong, and retrying will not change them.
 */
export const MAX_EXPANSION_NODES = 1000;
/**
 * A ~/.forward may add at most this many nodes: OpenSMTPD's MAX_EXPAND_NODES
 * (forward.c). There it counts every node of the expansion so far, so a
 * .forward read late in a big alias fails; here it counts the file's own.
 */
export const MAX_FORWARD_NODES = 100;
/**
 * At most this many targets are read from `:include:` files for one RCPT,
 * duplicates included, and at most MAX_INCLUDE_SIZE bytes of such files
 * in all (ours: 6.8 reads every file whole, however many an entry names).
 * A duplicate is dropped only after it has been read and compared: a
 * list of one name repeated to a megabyte held the lookup process for
 * more than half a second per RCPT, and an entry can name the file many
 * times over (`/list`, `//list`...). A list longer than this could never
 * be delivered anyway, as its tree would pass MAX_EXPANSION_NODES.
 */
export const MAX_INCLUDED_TARGETS = MAX_EXPANSION_NODES;
// #endregion expansion-limits

/** A reply's parts; the client sees `code enhanced text: <rcpt>`. */
export interface Status {
  code: number;
  enhanced: string;
  text: string;
}

// The replies OpenSMTPD's lookup sends (lka_session.c); the first two carry no enhanced code.
export const INVALID: Status = { code: 550, enhanced: '', text: 'Invalid recipient' };
export const TEMPORARY: Status = { code: 451, enhanced: '', text: 'Temporary failure' };
export const EXPANSION_TEMP: Status = { code: 424, enhanced: '4.2.4', text: 'Mailing list expansion problem' };
export const EXPANSION_PERM: Status = { code: 524, enhanced: '5.2.4', text: 'Mailing list expansion problem' };

/**
 * What ends an expansion: the status the client gets, and the log line
 * that says why. `reply`, when set, is the whole reply instead: the one
 * the rules gave for the address the client sent.
 */
export class Failure extends Error {
  constructor(readonly status: Status, readonly log: string, readonly reply?: string) {
    super(log);
  }
}

/** An error's text, for a Failure's log line. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
