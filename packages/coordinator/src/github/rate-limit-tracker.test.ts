import { describe, expect, it } from "vitest";
import { RateLimitTracker } from "./rate-limit-tracker.js";

function headers(h: Record<string, string>): { get(n: string): string | null } {
  return { get: (n: string): string | null => h[n] ?? null };
}

const RESET_S = 1_800_000_600;

describe("RateLimitTracker", () => {
  it("allows everything before any rate-limit header was seen", () => {
    const t = new RateLimitTracker(10);
    expect(t.allows("observe", 0)).toBe(true);
    expect(t.state(0).remaining).toBeUndefined();
  });

  it("defers observation and creation, not removal, at or below the reserve", () => {
    const t = new RateLimitTracker(10);
    const now = RESET_S * 1000 - 60_000;
    t.update(headers({ "x-ratelimit-remaining": "11", "x-ratelimit-reset": String(RESET_S), "x-ratelimit-limit": "5000" }), now);
    expect(t.allows("observe", now)).toBe(true);
    t.update(headers({ "x-ratelimit-remaining": "10", "x-ratelimit-reset": String(RESET_S) }), now);
    expect(t.allows("observe", now)).toBe(false);
    expect(t.allows("create", now)).toBe(false);
    expect(t.allows("remove", now)).toBe(true);
    expect(t.state(now)).toMatchObject({ remaining: 10, limit: 5000, reserve: 10, reserveActive: true });
    // Once the window has reset, the stale figures no longer hold anything back.
    expect(t.allows("observe", RESET_S * 1000)).toBe(true);
  });

  it("keeps the lowest remaining of a window when responses arrive out of order", () => {
    const t = new RateLimitTracker(0);
    t.update(headers({ "x-ratelimit-remaining": "40", "x-ratelimit-reset": String(RESET_S) }), 1);
    t.update(headers({ "x-ratelimit-remaining": "45", "x-ratelimit-reset": String(RESET_S) }), 2);
    expect(t.state(3).remaining).toBe(40);
    // A new window replaces the figures even though remaining went up.
    t.update(headers({ "x-ratelimit-remaining": "4999", "x-ratelimit-reset": String(RESET_S + 3600) }), 4);
    expect(t.state(5).remaining).toBe(4999);
    // A late response of the old window is ignored.
    t.update(headers({ "x-ratelimit-remaining": "39", "x-ratelimit-reset": String(RESET_S) }), 6);
    expect(t.state(7).remaining).toBe(4999);
  });

  it("ignores responses without rate-limit headers or with garbage values", () => {
    const t = new RateLimitTracker(5);
    t.update(headers({ "x-ratelimit-remaining": "abc", "x-ratelimit-reset": String(RESET_S) }), 1);
    t.update(headers({}), 1);
    expect(t.state(1).remaining).toBeUndefined();
  });
});
