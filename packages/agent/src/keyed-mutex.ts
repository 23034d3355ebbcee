/**
 * Per-key serialization: operations on the same lane run one after another in arrival order, operations on
 * different lanes run concurrently. The health loop and every lane operation go through the same instance, so
 * a health restart can never interleave with a stop.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Run `fn` once every earlier call with the same key has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Whether an operation on `key` is running or queued. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
