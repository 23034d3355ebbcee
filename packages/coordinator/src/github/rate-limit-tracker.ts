/**
 * What a GitHub call is for. Under the rate-limit reserve only `remove` calls go out, so the coordinator can
 * always finish draining and deleting what it owns, even when observation has used the budget up.
 */
export type CallPurpose = "observe" | "create" | "remove";

/** The rate-limit state as last reported by GitHub's `x-ratelimit-*` headers. */
export interface RateLimitState {
  /** Requests allowed per window; `undefined` until a response carried the headers. */
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  readonly used: number | undefined;
  /** When the window resets, ms since the epoch. */
  readonly resetAtMs: number | undefined;
  /** The bucket, e.g. `core`. */
  readonly resource: string | undefined;
  /** When these figures were read. */
  readonly observedAtMs: number | undefined;
  /** Requests kept back for removals. */
  readonly reserve: number;
  /** True while observation and creation are deferred because `remaining <= reserve`. */
  readonly reserveActive: boolean;
}

/** A header bag: fetch `Headers` or a plain record. */
export interface HeaderSource {
  get(name: string): string | null;
}

function intHeader(h: HeaderSource, name: string): number | undefined {
  const v = h.get(name);
  if (v === null || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Tracks GitHub's rate limit from response headers and decides whether a call may be sent. Responses can
 * arrive out of order; within one window the lowest `remaining` wins, so a late response cannot make the
 * budget look larger than it is.
 */
export class RateLimitTracker {
  private limit: number | undefined;
  private remaining: number | undefined;
  private used: number | undefined;
  private resetAtMs: number | undefined;
  private resource: string | undefined;
  private observedAtMs: number | undefined;

  /** @param reserve - requests kept for removals (see {@link CallPurpose}). */
  constructor(readonly reserve: number) {}

  /** Record the headers of one response. Responses without rate-limit headers are ignored. */
  update(headers: HeaderSource, nowMs: number): void {
    const remaining = intHeader(headers, "x-ratelimit-remaining");
    const reset = intHeader(headers, "x-ratelimit-reset");
    if (remaining === undefined || reset === undefined) return;
    const resetAtMs = reset * 1000;
    const used = intHeader(headers, "x-ratelimit-used");
    const sameWindow = this.resetAtMs === resetAtMs;
    if (sameWindow && this.remaining !== undefined && remaining > this.remaining) {
      // An older response of the same window arrived late; keep the lower figure.
      return;
    }
    if (!sameWindow && this.resetAtMs !== undefined && resetAtMs < this.resetAtMs) {
      // A response from the previous window arrived after one from the new window.
      return;
    }
    this.remaining = remaining;
    this.resetAtMs = resetAtMs;
    this.limit = intHeader(headers, "x-ratelimit-limit") ?? this.limit;
    this.used = used ?? this.used;
    this.resource = headers.get("x-ratelimit-resource") ?? this.resource;
    this.observedAtMs = nowMs;
  }

  /** Whether the reserve currently holds back non-removal calls. */
  reserveActive(nowMs: number): boolean {
    if (this.remaining === undefined || this.resetAtMs === undefined) return false;
    if (nowMs >= this.resetAtMs) return false; // the window has reset; the figures are stale
    return this.remaining <= this.reserve;
  }

  /** Whether a call with this purpose may be sent now. */
  allows(purpose: CallPurpose, nowMs: number): boolean {
    return purpose === "remove" || !this.reserveActive(nowMs);
  }

  /** A snapshot for `rateLimit()`, status output and metrics. */
  state(nowMs: number): RateLimitState {
    return {
      limit: this.limit,
      remaining: this.remaining,
      used: this.used,
      resetAtMs: this.resetAtMs,
      resource: this.resource,
      observedAtMs: this.observedAtMs,
      reserve: this.reserve,
      reserveActive: this.reserveActive(nowMs),
    };
  }
}
