/**
 * Counters behind `GET /_emulator/stats`: REST calls and rate-limit points per token name and per route
 * template, and webhook deliveries. Tokens are reported by name only, never by value.
 */
import type { DeliveryFate } from "./webhooks.js";

/** Counters of one token or route. */
export interface CallCounters {
  /** Requests received. */
  calls: number;
  /** Rate-limit points spent. */
  points: number;
  /** Conditional requests answered 304 (free). */
  notModified: number;
  /** Requests refused by a primary or secondary rate limit. */
  rateLimited: number;
  /** Requests failed by an injected 5xx. */
  injectedErrors: number;
}

/** The `GET /_emulator/stats` body. */
export interface EmulatorStats {
  /** Totals over every REST request. */
  total: CallCounters;
  /** Per token name (`admin` is the `--token`; `anonymous` covers missing and bad credentials). */
  byToken: Record<string, CallCounters>;
  /** Per `METHOD /path/template` (relative to `/api/v3`). */
  byRoute: Record<string, CallCounters>;
  /** Runner-protocol calls per `METHOD /_runner/template`. */
  runnerProtocol: Record<string, number>;
  /**
   * Webhook deliveries: `delivered` and `failed` count sends (late ones included, once sent); `dropped` were
   * never sent and `delayed` were (or will be) sent late, both by realism.
   */
  webhooks: { delivered: number; failed: number; dropped: number; delayed: number };
}

const zero = (): CallCounters => ({ calls: 0, points: 0, notModified: 0, rateLimited: 0, injectedErrors: 0 });

/** Mutable stats. */
export class Stats {
  private data: EmulatorStats = Stats.empty();

  private static empty(): EmulatorStats {
    return { total: zero(), byToken: {}, byRoute: {}, runnerProtocol: {}, webhooks: { delivered: 0, failed: 0, dropped: 0, delayed: 0 } };
  }

  /** Adds to the counters of a token and a route. */
  count(token: string, route: string, field: keyof CallCounters): void {
    const t = (this.data.byToken[token] ??= zero());
    const r = (this.data.byRoute[route] ??= zero());
    t[field] += 1;
    r[field] += 1;
    this.data.total[field] += 1;
  }

  /** Counts a runner-protocol call. */
  runnerCall(route: string): void {
    this.data.runnerProtocol[route] = (this.data.runnerProtocol[route] ?? 0) + 1;
  }

  /** Counts a webhook delivery's fate. */
  webhook(fate: DeliveryFate): void {
    this.data.webhooks[fate] += 1;
  }

  /** A copy of the counters. */
  snapshot(): EmulatorStats {
    return structuredClone(this.data);
  }

  /** Zeroes every counter. */
  reset(): void {
    this.data = Stats.empty();
  }
}
