// Fencing at the agent's intake (a coordinator superseded while paused must not act): an intent whose fencing
// token is below the highest this host has seen is refused with FENCING_TOKEN_STALE before anything runs, and the
// refusal is in the agent's audit chain. The high-water mark is durable (replay state, across restarts, from the
// journal and from a snapshot), a missing token (0) counts as the lowest, and an exact duplicate of an intent
// accepted before still gets its cached result.
import { RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileStateStore } from "../../packages/agent/src/intake/state-store.js";
import { HOST, makeIntake, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
  fx.executor.setLane("lane-1", "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
});
afterEach(async () => {
  await fx.close();
});

const stop = { $case: "stop" as const, value: { laneId: "lane-1", force: false } };

describe("fencing token", () => {
  it("a stale leader's intent (lower token, fresh sequence) is refused, not executed, and audited", async () => {
    const oldLeader = fx.intent(stop, { fencingToken: 7 });
    expect((await fx.send(oldLeader.bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.intent(stop, { fencingToken: 12 }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const executed = fx.executor.executeCalls.length;

    // The old leader wakes up and sends again: a new intent with a higher sequence but its old token.
    const stale = fx.intent(stop, { fencingToken: 7 });
    const r = (await fx.send(stale.bytes)).result;
    expect(r).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.FENCING_TOKEN_STALE });
    expect(r.message).toContain("below 12");
    expect(fx.executor.executeCalls.length).toBe(executed);
    expect(fx.replay.fence).toBe(12);

    const audit = await fx.auditRecords();
    const refusal = audit.find((a) => a.intentId === stale.intent.intentId);
    expect(refusal).toMatchObject({ phase: "rejected", reasonCode: "FENCING_TOKEN_STALE", laneId: "lane-1" });

    // An intent without a token (0) is the lowest of all once a token was seen.
    const none = (await fx.send(fx.intent(stop).bytes)).result;
    expect(none.reasonCode).toBe(RejectReason.FENCING_TOKEN_STALE);
    // The same leader (equal token) and a newer one go on.
    expect((await fx.send(fx.intent(stop, { fencingToken: 12 }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.intent(stop, { fencingToken: 13 }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it("an exact duplicate of an intent accepted under an older token still gets its cached result", async () => {
    const first = fx.intent(stop, { fencingToken: 3 });
    const answer = await fx.send(first.bytes);
    await fx.send(fx.intent(stop, { fencingToken: 9 }).bytes);
    const again = await fx.send(first.bytes);
    expect(Buffer.from(again.bytes).equals(Buffer.from(answer.bytes))).toBe(true);
  });

  it("the high-water mark survives restarts, from the journal and from a snapshot", async () => {
    await fx.send(fx.intent(stop, { fencingToken: 40 }).bytes);
    await fx.restart();
    expect(fx.replay.fence).toBe(40);
    expect((await fx.send(fx.intent(stop, { fencingToken: 39 }).bytes)).result.reasonCode).toBe(RejectReason.FENCING_TOKEN_STALE);
    // What is on disk (snapshot plus journal) holds it, as the next start reads it.
    await fx.restart();
    const loaded = await new FileStateStore(fx.dir, HOST).load();
    expect(loaded.kind === "ok" ? loaded.state.fence : undefined).toBe(40);
    expect(fx.replay.fence).toBe(40);
    expect((await fx.send(fx.intent(stop, { fencingToken: 1 }).bytes)).result.reasonCode).toBe(RejectReason.FENCING_TOKEN_STALE);
  });
});
