// security-cases group 12 (label injection) at the intake: reserved lk- labels only as the lane's own identity
// on this host, no control characters or separators in labels, length caps, and no intent can set ownership on
// another agent's lane.
import { RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeIntake, OTHER_HOST, POOL, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const identity = (laneId: string, host = "build01", pool = POOL) => ["lk-managed", `lk-lane-${laneId}`, `lk-host-${host}`, `lk-pool-${pool}`];

describe("label injection", () => {
  it.each([
    ["ownership of another host (lk-host-<other>)", identity("lane-1", OTHER_HOST)],
    ["both hosts' ownership labels", [...identity("lane-1"), `lk-host-${OTHER_HOST}`]],
    ["another lane's identity (lk-lane-<other>)", [...identity("lane-1").slice(0, 1), "lk-lane-lane-2", ...identity("lane-1").slice(2)]],
    ["a second lane identity", [...identity("lane-1"), "lk-lane-lane-2"]],
    ["lk-draining at creation", [...identity("lane-1"), "lk-draining"]],
    ["another reserved label", [...identity("lane-1"), "lk-admin"]],
    ["a reserved label in upper case", [...identity("lane-1"), "LK-MANAGED"]],
    ["a missing identity label", identity("lane-1").slice(1)],
    ["a newline in a label", [...identity("lane-1"), "linux\nlk-host-build02"]],
    ["a comma (config.sh --labels separator)", [...identity("lane-1"), "linux,lk-host-build02"]],
    ["'=' in a label", [...identity("lane-1"), "a=b"]],
    ["a NUL byte", [...identity("lane-1"), "linux\u0000"]],
    ["a label over the length limit", [...identity("lane-1"), "x".repeat(101)]],
    ["a duplicate label differing in case", [...identity("lane-1"), "Linux", "linux"]],
  ])("create with %s → INVALID_LABEL", async (_name, labels) => {
    const { result } = await fx.send(fx.create("lane-1", { labels }).bytes);
    expect(result.status).toBe(ResultStatus.RESULT_STATUS_REJECTED);
    // Overlong labels are already refused by verification's field caps, before any policy step.
    expect(result.reasonCode).toBe(labels.some((l) => l.length > 100) ? RejectReason.PAYLOAD_MALFORMED : RejectReason.INVALID_LABEL);
    expect(fx.executor.calls).toEqual([]);
  });

  it("an intent that would take over another agent's lane (markers name another host) is FOREIGN_HOST", async () => {
    fx.executor.setLane("lane-1", "foreign-host");
    const { result } = await fx.send(fx.create("lane-1").bytes);
    expect(result.reasonCode).toBe(RejectReason.FOREIGN_HOST);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("a create addressed to this host for a lane labelled for another host never reaches the runtime", async () => {
    const { result } = await fx.send(fx.create("lane-1", { labels: identity("lane-1", OTHER_HOST) }).bytes);
    expect(result.reasonCode).toBe(RejectReason.INVALID_LABEL);
    expect(fx.executor.calls).toEqual([]);
  });

  it("a well-formed create with capability labels is accepted", async () => {
    const { result } = await fx.send(fx.create("lane-1", { labels: [...identity("lane-1"), "linux", "gpu:a100", "x64"] }).bytes);
    expect(result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });
});
