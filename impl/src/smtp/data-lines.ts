/**
 * The data-line phase: every line of the message goes through the
 * data-line hooks, which may rewrite it (a filter that adds a footer,
 * strips a header) or refuse the message. Only sessions whose server has
 * data-line hooks pay for this; without them, content goes from the
 * socket to the queue without being cut into lines.
 *
 * A refusal cannot be answered at once (the client is sending the message
 * and reads no reply until the final dot): the first one is kept, the
 * remaining lines are dropped unread by the hooks, and the session gives
 * the reply at the end.
 */
import type { Reply } from './hooks.ts';
import { R } from './replies.ts';
import type { Session } from './session.ts';

const CRLF = Buffer.from('\r\n');

export class DataLineFilter {
  /** The reply to give at the end of DATA, if a hook refused the message. */
  refusal: Reply | undefined;
  /** That hook asked for the session to end, too. */
  disconnect = false;
  /** The start of a line whose end has not arrived yet. */
  private partial: Buffer[] = [];

  constructor(private readonly session: Session) {}

  /** Takes content (CRLF line ends, unstuffed) and gives back what the hooks made of the complete lines in it. */
  async filter(pieces: Buffer[]): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const piece of pieces) {
      let start = 0;
      for (let lf = piece.indexOf(0x0a); lf >= 0; lf = piece.indexOf(0x0a, start)) {
        this.partial.push(piece.subarray(start, lf + 1));
        start = lf + 1;
        const line = Buffer.concat(this.partial);
        this.partial = [];
        out.push(...(await this.line(line)));
      }
      if (start < piece.length) this.partial.push(piece.subarray(start));
    }
    return out;
  }

  /** One line, with its CRLF: the hooks' version of it. */
  private async line(line: Buffer): Promise<Buffer[]> {
    if (this.refusal) return [];
    const text = line.subarray(0, line.length - 2).toString('utf8');
    const decision = await this.session.decide('data-line', text);
    switch (decision.decision) {
      case 'rewrite':
        return [Buffer.from(decision.value.replace(/\r?\n/g, '\r\n'), 'utf8'), CRLF];
      case 'reject':
      case 'disconnect':
        this.refusal = decision.reply.code >= 400 && decision.reply.code < 600 ? decision.reply : R.hookInvalid;
        this.disconnect = decision.decision === 'disconnect';
        return [];
      default:
        return [line];
    }
  }
}
