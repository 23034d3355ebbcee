/**
 * GitHub's primary rate limit per token (a window of an hour from the first request, `x-ratelimit-*`
 * headers), the injected exhaustion of it, and ETags. A conditional request answered 304 spends nothing,
 * as on GitHub.
 */
import { createHash } from "node:crypto";
import { RATE_LIMIT_WINDOW_MS } from "./limits.js";
import type { Clock } from "./options.js";

/** One token's window. */
export interface RateBucket {
  limit: number;
  used: number;
  /** Epoch ms at which the window resets. */
  resetAt: number;
  /** Whether the injected `remaining` has been applied to this window. */
  overridden: boolean;
}

/** An injected budget: every bucket's current window gets `remaining` requests left. */
export interface RemainingOverride {
  remaining: number;
  /** Move the reset this far into the future (default: keep the window's reset). */
  resetAfterMs?: number;
}

/** Per-identity buckets. */
export class RateLimiter {
  private readonly buckets = new Map<string, RateBucket>();
  private override: RemainingOverride | undefined;

  constructor(private readonly clock: Clock) {}

  /** The current window of `identity`, rolled over if the hour has passed. */
  bucket(identity: string, limit: number): RateBucket {
    const now = this.clock.now();
    let b = this.buckets.get(identity);
    if (!b || now >= b.resetAt) {
      // A fresh window: the injected budget applies only to the window current when it was injected,
      // and to identities first seen while it is in force.
      b = { limit, used: 0, resetAt: now + RATE_LIMIT_WINDOW_MS, overridden: b !== undefined };
      this.buckets.set(identity, b);
    }
    if (this.override && !b.overridden) this.applyOverride(b, this.override);
    return b;
  }

  /** True when the window has nothing left. */
  exhausted(b: RateBucket): boolean {
    return b.used >= b.limit;
  }

  /** Spends one request. */
  spend(b: RateBucket): void {
    b.used = Math.min(b.limit, b.used + 1);
  }

  /** Injects a budget into every window (current and first-seen ones). */
  setOverride(override: RemainingOverride): void {
    this.override = override;
    for (const b of this.buckets.values()) {
      b.overridden = false;
      this.applyOverride(b, override);
    }
  }

  /** Removes any injected budget and starts every window afresh. */
  reset(): void {
    this.override = undefined;
    this.buckets.clear();
  }

  private applyOverride(b: RateBucket, o: RemainingOverride): void {
    b.used = Math.max(0, b.limit - Math.max(0, Math.min(b.limit, o.remaining)));
    if (o.resetAfterMs !== undefined) b.resetAt = this.clock.now() + o.resetAfterMs;
    b.overridden = true;
  }

  /** The `x-ratelimit-*` headers of a window. */
  headers(b: RateBucket, resource = "core"): Record<string, string> {
    return {
      "x-ratelimit-limit": String(b.limit),
      "x-ratelimit-remaining": String(Math.max(0, b.limit - b.used)),
      "x-ratelimit-used": String(b.used),
      "x-ratelimit-reset": String(Math.ceil(b.resetAt / 1000)),
      "x-ratelimit-resource": resource,
    };
  }
}

/** A weak ETag of a response body, as GitHub sends for JSON. */
export function etagOf(body: string): string {
  return `W/"${createHash("sha256").update(body).digest("hex").slice(0, 40)}"`;
}

/** True when an `If-None-Match` header matches `etag` (weak comparison, lists and `*` allowed). */
export function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (t: string): string => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || bare(t) === bare(etag));
}
