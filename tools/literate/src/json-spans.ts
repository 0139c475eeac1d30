/**
 * Where each value of a JSON text is, by character offsets: so that a tool
 * can point at a line of book.json, or edit it in place without reformatting
 * the rest. The text must be valid JSON (parse it with JSON.parse first).
 */
export interface JsonSpan {
  start: number;
  end: number;
  /** For an array: its elements. */
  items?: JsonSpan[];
  /** For an object: its members, by key. */
  fields?: Map<string, JsonSpan>;
}

export function jsonSpans(text: string): JsonSpan {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): JsonSpan => {
    ws();
    const start = i;
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      const fields = new Map<string, JsonSpan>();
      const items: JsonSpan[] = [];
      i++;
      ws();
      if (text[i] === close) i++;
      else {
        for (;;) {
          if (c === '{') {
            ws();
            const key = str();
            ws();
            i++; // the colon
            fields.set(key, value());
          } else items.push(value());
          ws();
          if (text[i++] === close || i > text.length) break;
        }
      }
      return c === '{' ? { start, end: i, fields } : { start, end: i, items };
    }
    if (c === '"') {
      str();
      return { start, end: i };
    }
    while (i < text.length && !',]} \t\n\r'.includes(text[i]!)) i++;
    return { start, end: i };
  };
  return value();
}

/** The 1-based line of a character offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset && k < text.length; k++) if (text[k] === '\n') line++;
  return line;
}
