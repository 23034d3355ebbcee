import { DEFAULT_INTENT_TTL_MS, FakeClock, generateSigningKey, MAX_INTENT_TTL_MS, systemClock } from "@lanekeeper/shared";
import type { NatsConnection } from "nats";
import { describe, expect, it } from "vitest";
import { resolveDispatcherOptions, type DispatcherOptions } from "./dispatcher.js";
import { StaticHostRegistry } from "./host-registry.js";
import {
  DEFAULT_BEFORE_FLOOR_RETRY_MS,
  DEFAULT_BEFORE_FLOOR_WAIT_MS,
  DEFAULT_NOT_BEFORE_SLACK_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./limits.js";
import { ResultVerifier } from "./result-verifier.js";
import type { SequenceAllocator } from "./sequence-allocator.js";

const base: DispatcherOptions = {
  nc: {} as NatsConnection,
  signingKey: generateSigningKey(),
  sequences: {} as SequenceAllocator,
  hosts: new StaticHostRegistry([]),
};

describe("resolveDispatcherOptions", () => {
  it("fills in the built-in defaults when neither options nor policy say anything", () => {
    const r = resolveDispatcherOptions(base);
    expect(r).toMatchObject({
      clock: systemClock,
      ttlMs: DEFAULT_INTENT_TTL_MS,
      notBeforeSlackMs: DEFAULT_NOT_BEFORE_SLACK_MS,
      requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
      beforeFloorWaitMs: DEFAULT_BEFORE_FLOOR_WAIT_MS,
      beforeFloorRetryMs: DEFAULT_BEFORE_FLOOR_RETRY_MS,
    });
    expect(r.verifier).toBeInstanceOf(ResultVerifier);
  });

  it("takes the policy's intent lifetime and result timeout, capping the lifetime so lifetime + slack fits the agent's maximum", () => {
    expect(resolveDispatcherOptions(base, { intentTtlMs: 30_000, resultTimeoutMs: 7_000 })).toMatchObject({ ttlMs: 30_000, requestTimeoutMs: 7_000 });
    const capped = resolveDispatcherOptions({ ...base, notBeforeSlackMs: 9_000 }, { intentTtlMs: MAX_INTENT_TTL_MS, resultTimeoutMs: 7_000 });
    expect(capped.ttlMs).toBe(MAX_INTENT_TTL_MS - 9_000);
  });

  it("an explicit option wins over the policy, and resolving twice changes nothing", () => {
    const clock = new FakeClock(1);
    const verifier = new ResultVerifier(base.hosts, { clock });
    const r = resolveDispatcherOptions(
      { ...base, clock, verifier, ttlMs: 1_000, requestTimeoutMs: 2_000, beforeFloorWaitMs: 3, beforeFloorRetryMs: 4 },
      { intentTtlMs: 30_000, resultTimeoutMs: 7_000 },
    );
    expect(r).toMatchObject({ clock, verifier, ttlMs: 1_000, requestTimeoutMs: 2_000, beforeFloorWaitMs: 3, beforeFloorRetryMs: 4 });
    expect(resolveDispatcherOptions(r)).toEqual(r);
  });

  it("the default verifier reads the resolved clock", () => {
    const clock = new FakeClock(5);
    const r = resolveDispatcherOptions({ ...base, clock });
    expect((r.verifier as unknown as { clock: unknown }).clock).toBe(clock);
  });
});
