import { describe, expect, it } from "vitest";
import { etagOf, ifNoneMatchMatches, RateLimiter } from "./rate-limit.js";

describe("RateLimiter", () => {
  it("spends per window, rolls over after an hour, and applies an injected budget once per window", () => {
    let now = 1_000_000;
    const limiter = new RateLimiter({ now: () => now });
    const b = limiter.bucket("admin", 3);
    limiter.spend(b);
    expect(limiter.headers(b)).toMatchObject({ "x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-used": "1", "x-ratelimit-reset": String(Math.ceil((now + 3600_000) / 1000)) });
    limiter.setOverride({ remaining: 0, resetAfterMs: 5000 });
    expect(limiter.exhausted(limiter.bucket("admin", 3))).toBe(true);
    expect(limiter.exhausted(limiter.bucket("newcomer", 3))).toBe(true);
    expect(limiter.bucket("admin", 3).resetAt).toBe(now + 5000);
    now += 5000;
    const fresh = limiter.bucket("admin", 3);
    expect(fresh.used).toBe(0);
    expect(limiter.exhausted(fresh)).toBe(false);
    limiter.reset();
    expect(limiter.bucket("newcomer", 3).used).toBe(0);
  });
});

describe("ETags", () => {
  it("are weak, change with the body, and match If-None-Match lists, weak forms and *", () => {
    const a = etagOf('{"a":1}');
    expect(a).toMatch(/^W\/"[0-9a-f]{40}"$/);
    expect(etagOf('{"a":2}')).not.toBe(a);
    expect(ifNoneMatchMatches(a, a)).toBe(true);
    expect(ifNoneMatchMatches(a.slice(2), a)).toBe(true);
    expect(ifNoneMatchMatches(`W/"x", ${a}`, a)).toBe(true);
    expect(ifNoneMatchMatches("*", a)).toBe(true);
    expect(ifNoneMatchMatches('W/"other"', a)).toBe(false);
    expect(ifNoneMatchMatches(undefined, a)).toBe(false);
  });
});
