/**
 * A channel between two processes: the requests one side may send, each
 * with the schema of its body and of its answer. OpenSMTPD numbers its
 * imsg types in one enum and checks each payload's size by hand; here one
 * table per channel gives both the TypeScript types and the checks.
 *
 *     const lookupChannel = channel('lookup', {
 *       'lookup.rcpt': { request: object({ rcptTo: string }), response: decision },
 *     });
 *     type LookupRequest = RequestOf<typeof lookupChannel>;
 *     //   { type: 'lookup.rcpt'; rcptTo: string }
 */
import type { Infer, Schema } from './schema.ts';

/** What may travel with a request besides its body: a listening socket or a connected one (see transport.ts). */
export type HandleKind = 'server' | 'socket';

export interface CallSpec {
  request: Schema<object>;
  response: Schema<unknown>;
  /** The request must carry this handle, and is refused without it. */
  handle?: HandleKind;
}

export type Calls = Record<string, CallSpec>;

export interface Channel<C extends Calls> {
  readonly name: string;
  readonly calls: C;
}

export function channel<const C extends Calls>(name: string, calls: C): Channel<C> {
  return { name, calls };
}

// #region message-union
/**
 * The requests of a channel as one discriminated union, `type` first:
 *
 *   { type: 'queue.message.create' }
 *   | { type: 'queue.message.commit'; msgid: number; envelopes: WireEnvelope[] }
 *   | ...
 *
 * A `switch (msg.type)` narrows it, and `request()` takes only members of
 * it, so a misspelt type or a missing field is a compile error on the
 * sending side; the schemas catch the same mistakes, and worse ones, on
 * the receiving side, where the compiler's promises do not reach.
 */
export type RequestOf<C extends Calls> = {
  [K in keyof C & string]: { type: K } & Infer<C[K]['request']>;
}[keyof C & string];

/** The answer to a request of type K. */
export type ResponseOf<C extends Calls, K extends keyof C> = Infer<C[K]['response']>;
// #endregion message-union

/** One member of the union, by its type. */
export type MessageOf<C extends Calls, K extends keyof C & string> = Extract<RequestOf<C>, { type: K }>;

/**
 * What a request's receiver must provide: one function per request type.
 * Being a mapped type, the compiler refuses a server that forgets one.
 */
export type Handlers<C extends Calls> = {
  [K in keyof C & string]: (msg: MessageOf<C, K>, handle: unknown) => Promise<ResponseOf<C, K>> | ResponseOf<C, K>;
};
