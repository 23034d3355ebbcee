/**
 * In-process serialization: a {@link SerialQueue} runs its operations one after another in call order, a
 * {@link KeyedMutex} does so per key and lets different keys run concurrently. A failed operation does not stop
 * the ones queued behind it; its caller gets the rejection. Pure: promises only, no timers, no I/O.
 */

/** Runs operations one at a time, in call order. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Run `fn` once every earlier operation has settled; resolves or rejects with `fn`'s outcome. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every operation queued so far has settled (never rejects). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/**
 * Per-key serialization: operations on the same key run one after another in arrival order, operations on
 * different keys run concurrently. Idle keys are forgotten, so the map holds only keys with work queued.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Run `fn` once every earlier call with the same key has settled; resolves or rejects with `fn`'s outcome. */
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
