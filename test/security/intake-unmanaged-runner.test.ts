// security-cases group 9 (unmanaged runner) at the intake: whatever the coordinator asks, a unit, container or
// directory without lanekeeper's markers, with another host's markers, with markers that do not verify, or
// behind a symlink is never acted on. The RecordingExecutor models what the runtime's inspect reports.
import { Backend, RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LaneOwnership } from "../../packages/agent/src/intake/lane-executor.js";
import { makeIntake, POOL, SCOPE, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const cases: [string, LaneOwnership, RejectReason][] = [
  ["exists without an ownership marker", "unmanaged", RejectReason.NOT_OWNED],
  ["marker names another host", "foreign-host", RejectReason.FOREIGN_HOST],
  ["marker added by someone else (does not verify)", "bad-marker", RejectReason.BAD_MARKER],
  ["unit file is a symlink out of the managed directory", "symlink", RejectReason.SYMLINK],
];

const mutating = (laneId: string) =>
  [
    { $case: "stop" as const, value: { laneId, force: true } },
    { $case: "restart" as const, value: { laneId, force: true } },
    { $case: "remove" as const, value: { laneId, force: true, removeToken: undefined } },
    { $case: "drain" as const, value: { laneId } },
    { $case: "start" as const, value: { laneId } },
    { $case: "hold" as const, value: { laneId, reason: "x" } },
  ] as const;

describe("unmanaged runners are never touched", () => {
  it.each(cases)("%s: every action is refused", async (_name, ownership, reason) => {
    fx.executor.setLane("lane-1", ownership, { scope: SCOPE, pool: POOL, backend: Backend.BACKEND_SYSTEMD });
    for (const action of mutating("lane-1")) {
      const { result } = await fx.send(fx.intent(action).bytes);
      expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason });
      // Nothing about the foreign object is reported back.
      expect(result.observed).toBeUndefined();
    }
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it.each(cases)("%s: a create with that lane id does not take it over", async (_name, ownership, reason) => {
    fx.executor.setLane("lane-1", ownership);
    const { result } = await fx.send(fx.create("lane-1").bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason });
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("a force flag does not override ownership", async () => {
    fx.executor.setLane("lane-1", "unmanaged");
    const { result } = await fx.send(fx.intent({ $case: "remove", value: { laneId: "lane-1", force: true, removeToken: undefined } }, { forcedBy: "alice" }).bytes);
    expect(result.reasonCode).toBe(RejectReason.NOT_OWNED);
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("the executor's own re-check at the instant of acting is honoured (marker changed after inspect)", async () => {
    fx.executor.setLane("lane-1", "owned", { scope: SCOPE, pool: POOL, backend: Backend.BACKEND_SYSTEMD });
    const { RejectError } = await import("@lanekeeper/shared");
    fx.executor.onExecute = () => {
      throw new RejectError(RejectReason.NOT_OWNED, "marker vanished");
    };
    const { result } = await fx.send(fx.intent({ $case: "stop", value: { laneId: "lane-1", force: false } }).bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.NOT_OWNED });
  });
});

describe("runtime trouble before acting", () => {
  it("an inspect that fails is a refusal (nothing changed), never an execution", async () => {
    const { RuntimeError } = await import("../../packages/agent/src/errors.js");
    fx.executor.inspect = () => Promise.reject(new RuntimeError("systemctl show timed out"));
    const { result } = await fx.send(fx.intent({ $case: "stop", value: { laneId: "lane-1", force: false } }).bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: "RUNTIME_FAILED" });
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("an action that fails after it started is FAILED with its stable code", async () => {
    const { RuntimeError } = await import("../../packages/agent/src/errors.js");
    fx.executor.setLane("lane-1", "owned", { scope: SCOPE, pool: POOL, backend: Backend.BACKEND_SYSTEMD });
    fx.executor.onExecute = () => {
      throw new RuntimeError("systemctl stop failed");
    };
    const { result } = await fx.send(fx.intent({ $case: "stop", value: { laneId: "lane-1", force: false } }).bytes);
    expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_FAILED, reasonCode: "RUNTIME_FAILED" });
    expect(fx.executor.executeCalls).toHaveLength(1);
  });
});
