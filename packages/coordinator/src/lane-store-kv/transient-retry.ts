import { isTransientNatsError } from "../context/nats-opening.js";
import { NATS_OPEN_BACKOFF_MAX_MS, NATS_OPEN_BACKOFF_MIN_MS } from "../limits.js";

/** Options of {@link retryTransient}. */
export interface TransientRetryOptions {
  /** How long, from the first attempt, a transient failure is retried. */
  readonly waitMs: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Waits between attempts (tests). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Run a JetStream read until it succeeds, fails for good, or `waitMs` passed: a failure that only means "no answer
 * now" ({@link isTransientNatsError}: 503, a timeout, no responders, a lost connection) is retried with the opening's
 * backoff (0.25 s doubling to 4 s); any other error, and the last transient one, is thrown as it is. Only for reads
 * and other requests that are safe to repeat: a compare-and-set write whose answer was lost may have taken effect.
 */
export async function retryTransient<T>(fn: () => Promise<T>, o: TransientRetryOptions): Promise<T> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const until = now() + Math.max(0, o.waitMs);
  let delay = NATS_OPEN_BACKOFF_MIN_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientNatsError(err) || now() + delay > until) throw err;
      await sleep(delay);
      delay = Math.min(NATS_OPEN_BACKOFF_MAX_MS, delay * 2);
    }
  }
}
