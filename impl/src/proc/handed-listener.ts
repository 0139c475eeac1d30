/**
 * A listening socket that arrived from the parent, before the SMTP engine
 * is running. Node starts accepting on a received net.Server at once, so
 * a client may connect before anyone listens for 'connection'; such
 * clients are held, unread, and so are those the parent accepted while
 * smtp was starting and passed on. takeOver() hands them to the engine.
 */
import type { Server, Socket } from 'node:net';
import type { ListenerInfo } from './channels/control.ts';

export class HandedListener {
  private held: Socket[] | undefined = [];
  private readonly hold = (socket: Socket) => this.held?.push(socket);

  constructor(
    readonly info: ListenerInfo,
    readonly server: Server,
  ) {
    server.on('connection', this.hold);
  }

  /** A connection the parent accepted on this listener: held until takeOver(), then given to the engine's listener. */
  adopt(socket: Socket): void {
    if (this.held) this.held.push(socket);
    else this.server.emit('connection', socket);
  }

  /**
   * Call after the engine has its own 'connection' listener on `server`:
   * stops holding, and replays what was held to that listener.
   */
  takeOver(): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.server.off('connection', this.hold);
    for (const socket of held) this.server.emit('connection', socket);
  }
}
