/** One cached conditional-GET answer. */
export interface EtagEntry<T> {
  readonly etag: string;
  readonly value: T;
}

/**
 * ETag cache keyed by request URL (path and query, so each page of a listing has its own entry). A hit lets
 * the client send `If-None-Match`; GitHub answers 304 without spending rate limit. Bounded: the least
 * recently used entry goes first.
 */
export class EtagCache<T> {
  private readonly entries = new Map<string, EtagEntry<T>>();

  /** @param maxEntries - most URLs remembered. */
  constructor(private readonly maxEntries: number) {}

  get(key: string): EtagEntry<T> | undefined {
    const e = this.entries.get(key);
    if (e !== undefined) {
      // Refresh recency: Map iteration order is insertion order.
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  set(key: string, etag: string, value: T): void {
    this.entries.delete(key);
    this.entries.set(key, { etag, value });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
