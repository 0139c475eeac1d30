/**
 * A short unified-style diff of two texts, line by line: enough to see what
 * an example now prints differently from what the book shows, not a patch.
 */
export interface DiffOptions {
  /** Names for the two sides, shown in the `---` and `+++` header lines. */
  labels?: [expected: string, actual: string];
  /** Unchanged lines shown around each change. */
  context?: number;
  /** At most this many lines of hunks; the rest is counted, not shown. */
  maxLines?: number;
}

type Op = { kind: ' ' | '-' | '+'; text: string; a: number; b: number };

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The edit script from `a` to `b`: shared lines, lines only in `a` (-), lines only in `b` (+). */
function editScript(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  const ops: Op[] = [];
  for (let i = 0; i < pre; i++) ops.push({ kind: ' ', text: a[i]!, a: i, b: i });

  if (am.length * bm.length <= 1_000_000) {
    // Longest common subsequence of the differing middle.
    const n = am.length;
    const m = bm.length;
    const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i]![j] = am[i] === bm[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        ops.push({ kind: ' ', text: am[i]!, a: pre + i, b: pre + j });
        i++;
        j++;
      } else if (j >= m || (i < n && lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
        ops.push({ kind: '-', text: am[i]!, a: pre + i, b: pre + j });
        i++;
      } else {
        ops.push({ kind: '+', text: bm[j]!, a: pre + i, b: pre + j });
        j++;
      }
    }
  } else {
    am.forEach((text, i) => ops.push({ kind: '-', text, a: pre + i, b: pre }));
    bm.forEach((text, j) => ops.push({ kind: '+', text, a: pre + am.length, b: pre + j }));
  }
  for (let k = 0; k < suf; k++) {
    ops.push({ kind: ' ', text: a[a.length - suf + k]!, a: a.length - suf + k, b: b.length - suf + k });
  }
  return ops;
}

/** An empty string when the texts are equal. */
export function lineDiff(expected: string, actual: string, options: DiffOptions = {}): string {
  if (expected === actual) return '';
  const [labelA, labelB] = options.labels ?? ['expected', 'actual'];
  const context = options.context ?? 2;
  const maxLines = options.maxLines ?? 24;
  const a = splitLines(expected);
  const b = splitLines(actual);
  const ops = editScript(a, b);

  // Each change with its context; overlapping or touching spans make one hunk.
  const hunks: Op[][] = [];
  let span: [number, number] | undefined;
  const close = () => {
    if (span) hunks.push(ops.slice(span[0], span[1] + 1));
  };
  ops.forEach((op, k) => {
    if (op.kind === ' ') return;
    const from = Math.max(0, k - context);
    const to = Math.min(ops.length - 1, k + context);
    if (span && from <= span[1] + 1) span[1] = to;
    else {
      close();
      span = [from, to];
    }
  });
  close();

  const out = [`--- ${labelA}`, `+++ ${labelB}`];
  if (a.length === b.length && a.every((l, i) => l === b[i])) {
    // Same lines; only the final newline differs.
    out.push('(the texts differ only in their final newline)');
    return out.join('\n');
  }
  let shown = 0;
  let hidden = 0;
  for (const hunk of hunks) {
    const first = hunk[0]!;
    const lenA = hunk.filter((o) => o.kind !== '+').length;
    const lenB = hunk.filter((o) => o.kind !== '-').length;
    const header = `@@ -${first.a + (lenA ? 1 : 0)},${lenA} +${first.b + (lenB ? 1 : 0)},${lenB} @@`;
    for (const line of [header, ...hunk.map((o) => `${o.kind}${o.text}`)]) {
      if (shown < maxLines) {
        out.push(line);
        shown++;
      } else if (!line.startsWith('@@')) hidden++;
    }
  }
  if (hidden) out.push(`... ${hidden} more line${hidden === 1 ? '' : 's'} of diff not shown`);
  return out.join('\n');
}
