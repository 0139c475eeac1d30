/**
 * Schemas: what a message from another process must look like, written
 * once and used twice. TypeScript reads the type from the schema (so the
 * sender cannot send a message of the wrong shape), and the receiver runs
 * it on what arrives (so a process never acts on a message it has not
 * checked: its peer may have a bug, or may be the one an attacker owns).
 *
 *     const commit = object({ msgid: uint32, envelopes: array(envelope) });
 *     type Commit = Infer<typeof commit>;   // { msgid: number; envelopes: ... }
 *     commit.parse(JSON.parse(text));       // throws ProtocolError if it is not one
 */

/** A message that does not match its schema; `path` says where (`envelopes[2].recipient.domain`). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(readonly path: string, readonly expected: string) {
    super(`${path || 'message'}: expected ${expected}`);
  }
}

export interface Schema<T> {
  /** What the schema accepts, in words, for error messages. */
  readonly expected: string;
  /** Returns the value, typed, or throws ProtocolError. Objects come back with only the declared keys. */
  parse(value: unknown, path?: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function schema<T>(expected: string, check: (value: unknown, path: string) => T): Schema<T> {
  return { expected, parse: (value, path = '') => check(value, path) };
}

function fail(path: string, expected: string): never {
  throw new ProtocolError(path, expected);
}

export const string: Schema<string> = schema('a string', (v, p) => (typeof v === 'string' ? v : fail(p, 'a string')));

export const boolean: Schema<boolean> = schema('a boolean', (v, p) => (typeof v === 'boolean' ? v : fail(p, 'a boolean')));

/** A finite number (JSON has no NaN or Infinity, but a buggy sender may still produce null). */
export const number: Schema<number> = schema('a number', (v, p) =>
  typeof v === 'number' && Number.isFinite(v) ? v : fail(p, 'a number'));

/** An integer from 0 to 2^32-1: message ids, counts, sizes. */
export const uint32: Schema<number> = schema('an unsigned 32-bit integer', (v, p) =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : fail(p, 'an unsigned 32-bit integer'));

/** A string of hex digits of a fixed length: how 64-bit ids travel, since JSON has no bigint. */
export function hex(digits: number): Schema<string> {
  const re = new RegExp(`^[0-9a-f]{${digits}}$`);
  const expected = `${digits} hex digits`;
  return schema(expected, (v, p) => (typeof v === 'string' && re.test(v) ? v : fail(p, expected)));
}

export function literal<const L extends string | number | boolean | null>(value: L): Schema<L> {
  const expected = JSON.stringify(value);
  return schema(expected, (v, p) => (v === value ? value : fail(p, expected)));
}

export function oneOf<const L extends string>(values: readonly L[]): Schema<L> {
  const expected = `one of ${values.join(', ')}`;
  return schema(expected, (v, p) => ((values as readonly unknown[]).includes(v) ? (v as L) : fail(p, expected)));
}

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return schema(`${inner.expected} or null`, (v, p) => (v === null ? null : inner.parse(v, p)));
}

/** An array of at most `max` items (a peer cannot make us allocate without bound). */
export function array<T>(item: Schema<T>, max = 10_000): Schema<T[]> {
  const expected = `an array of ${item.expected}`;
  return schema(expected, (v, p) => {
    if (!Array.isArray(v)) fail(p, expected);
    if (v.length > max) fail(p, `at most ${max} items`);
    return v.map((x, i) => item.parse(x, `${p}[${i}]`));
  });
}

/** Marks an object field as optional; `object()` then omits it from the type's required keys. */
export interface Optional<T> extends Schema<T | undefined> {
  readonly optional: true;
}

export function optional<T>(inner: Schema<T>): Optional<T> {
  return { expected: inner.expected, optional: true, parse: (v, p = '') => (v === undefined ? undefined : inner.parse(v, p)) };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Optional<unknown> ? K : never }[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Simplify<
  { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

/** An object schema keeps its fields, so that another can extend it: `object({ ...draft.shape, id })`. */
export interface ObjectSchema<S extends Shape> extends Schema<ObjectOf<S>> {
  readonly shape: S;
}

/**
 * A plain object with these fields. Unknown fields are dropped, not
 * copied: what the receiver holds afterwards is exactly what it checked.
 */
export function object<S extends Shape>(shape: S): ObjectSchema<S> {
  const expected = `an object with ${Object.keys(shape).join(', ') || 'no fields'}`;
  const parse = schema(expected, (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'an object');
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(shape)) {
      const value = field.parse((v as Record<string, unknown>)[key], p ? `${p}.${key}` : key);
      if (value !== undefined) out[key] = value;
    }
    return out as ObjectOf<S>;
  }).parse;
  return { expected, shape, parse };
}
