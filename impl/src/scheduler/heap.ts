/**
 * A binary min-heap: the earliest item on top, pushed and popped in
 * O(log n). The scheduler keeps one per dispatcher, keyed by next try,
 * so that finding what is due costs the same with ten envelopes queued
 * or a hundred thousand (OpenSMTPD's ramqueue keeps a splay tree for the
 * same reason).
 *
 * Items are never removed from the middle. An envelope that changes
 * (handed out, rescheduled, removed) leaves its old item behind, and the
 * caller recognises stale items when they reach the top and drops them.
 */
export class Heap<T> {
  private readonly items: T[] = [];

  /** `before(a, b)`: a comes out first. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get length(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < items.length && this.before(items[left]!, items[first]!)) first = left;
      if (right < items.length && this.before(items[right]!, items[first]!)) first = right;
      if (first === i) break;
      [items[i], items[first]] = [items[first]!, items[i]!];
      i = first;
    }
    return top;
  }
}
