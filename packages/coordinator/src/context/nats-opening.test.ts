import { FakeClock, LanekeeperError } from "@lanekeeper/shared";
import { NatsError } from "nats";
import { describe, expect, it } from "vitest";
import { isTransientNatsError, NatsOpening, NatsUnavailableError } from "./nats-opening.js";

class WrappedError extends LanekeeperError<"LANE_STORE_UNAVAILABLE"> {
  constructor(cause: unknown) {
    super("LANE_STORE_UNAVAILABLE", "cannot open the lane store", { cause });
  }
}

describe("isTransientNatsError", () => {
  it("retries no-answer failures, also wrapped by a store; not auth, permission or config errors", () => {
    expect(isTransientNatsError(NatsError.errorForCode("TIMEOUT"))).toBe(true);
    expect(isTransientNatsError(NatsError.errorForCode("503"))).toBe(true);
    expect(isTransientNatsError(NatsError.errorForCode("CONNECTION_REFUSED"))).toBe(true);
    expect(isTransientNatsError(new WrappedError(NatsError.errorForCode("TIMEOUT")))).toBe(true);
    expect(isTransientNatsError(NatsError.errorForCode("AUTHORIZATION_VIOLATION"))).toBe(false);
    expect(isTransientNatsError(Object.assign(new Error("JetStream system temporarily unavailable"), { api_error: { code: 503, err_code: 10008 } }))).toBe(true);
    expect(isTransientNatsError(Object.assign(new Error("stream not found"), { api_error: { code: 404, err_code: 10059 } }))).toBe(false);
    expect(isTransientNatsError(new WrappedError(undefined))).toBe(false);
    expect(isTransientNatsError(new NatsUnavailableError("gave up", { cause: NatsError.errorForCode("TIMEOUT") }))).toBe(false);
  });
});

describe("NatsOpening", () => {
  it("retries with growing pauses until the step answers", async () => {
    const clock = new FakeClock();
    const pauses: number[] = [];
    const o = new NatsOpening({ servers: ["nats://a:4222"], waitMs: 60_000, clock, sleep: (ms) => (pauses.push(ms), clock.advance(ms), Promise.resolve()) });
    let calls = 0;
    const v = await o.run("open", () => (++calls < 5 ? Promise.reject(NatsError.errorForCode("TIMEOUT")) : Promise.resolve(42)));
    expect(v).toBe(42);
    expect(pauses).toEqual([250, 500, 1000, 2000]);
  });

  it("fails with NATS_UNAVAILABLE past its bound, naming the servers, the step and what to check", async () => {
    const clock = new FakeClock();
    const o = new NatsOpening({ servers: ["nats://a:4222", "nats://b:4222"], waitMs: 10_000, clock, sleep: (ms) => (clock.advance(ms), Promise.resolve()) });
    const err = await o.run("open the KV bucket lk_lanes", () => Promise.reject(NatsError.errorForCode("TIMEOUT"))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsUnavailableError);
    expect((err as NatsUnavailableError).code).toBe("NATS_UNAVAILABLE");
    expect((err as Error).message).toMatch(/^cannot open the KV bucket lk_lanes at nats:\/\/a:4222, nats:\/\/b:4222: no answer after \d+ attempt/);
    expect((err as Error).message).toContain("docs/cluster.md");
    expect(clock.now() - 1_800_000_000_000).toBeLessThanOrEqual(10_000);
  });

  it("does not retry an error that will not go away", async () => {
    const o = new NatsOpening({ servers: ["nats://a:4222"], waitMs: 60_000, sleep: () => Promise.reject(new Error("slept")) });
    const auth = NatsError.errorForCode("AUTHORIZATION_VIOLATION");
    await expect(o.run("connect", () => Promise.reject(auth))).rejects.toBe(auth);
  });
});
