// security-cases group 10 (allowlist) plus control.enabled, max lanes and holds, at the intake with the
// RecordingExecutor: every refusal has its exact reason and no runtime call at all.
import { Backend, LaneMode, RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IMAGE, makeIntake, POOL, SCOPE, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const owned = { scope: SCOPE, pool: POOL, backend: Backend.BACKEND_SYSTEMD };

async function expectRefused(bytes: Uint8Array, reason: RejectReason, opts: { inspected?: boolean } = {}): Promise<void> {
  const { result } = await fx.send(bytes);
  expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason });
  expect(fx.executor.executeCalls).toEqual([]);
  if (!opts.inspected) expect(fx.executor.calls).toEqual([]);
}

describe("control.enabled", () => {
  it("refuses every intent while control is disabled (the default)", async () => {
    fx.control = { ...fx.control, enabled: false };
    await expectRefused(fx.create("lane-1").bytes, RejectReason.CONTROL_DISABLED);
    fx.executor.setLane("lane-2", "owned", owned);
    await expectRefused(fx.intent({ $case: "stop", value: { laneId: "lane-2", force: false } }).bytes, RejectReason.CONTROL_DISABLED);
  });

  it("is read on every intent: disabling applies to the next one", async () => {
    expect((await fx.send(fx.create("lane-1").bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    fx.control = { ...fx.control, enabled: false };
    const { result } = await fx.send(fx.create("lane-2").bytes);
    expect(result.reasonCode).toBe(RejectReason.CONTROL_DISABLED);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });
});

describe("allowlist", () => {
  it("an action kind that is not allowed (remove when only restart is)", async () => {
    fx.control = { ...fx.control, actions: ["restart"] };
    fx.executor.setLane("lane-1", "owned", owned);
    await expectRefused(fx.intent({ $case: "remove", value: { laneId: "lane-1", force: false, removeToken: undefined } }).bytes, RejectReason.NOT_ALLOWED_ACTION);
  });

  it("an empty list allows nothing", async () => {
    fx.control = { ...fx.control, actions: [] };
    await expectRefused(fx.create("lane-1").bytes, RejectReason.NOT_ALLOWED_ACTION);
  });

  it.each([
    ["scope not on the list", { scope: "acme/web" }, RejectReason.NOT_ALLOWED_SCOPE],
    ["scope case variant", { scope: "Acme/api" }, RejectReason.NOT_ALLOWED_SCOPE],
    ["scope glob", { scope: "acme/*" }, RejectReason.NOT_ALLOWED_SCOPE],
    ["org scope when only a repo is allowed", { scope: "org:acme" }, RejectReason.NOT_ALLOWED_SCOPE],
    ["pool not on the list", { pool: "linux-arm64" }, RejectReason.NOT_ALLOWED_POOL],
    ["pool case variant", { pool: "Linux-x64" }, RejectReason.NOT_ALLOWED_POOL],
    ["pool glob *", { pool: "*" }, RejectReason.NOT_ALLOWED_POOL],
    ["pool glob ?", { pool: "linux-x6?" }, RejectReason.NOT_ALLOWED_POOL],
    ["pool glob [", { pool: "linux-x[6]4" }, RejectReason.NOT_ALLOWED_POOL],
  ])("create with %s", async (_name, over, reason) => {
    await expectRefused(fx.create("lane-1", over).bytes, reason);
  });

  it("create with an unspecified backend is refused by the strict field checks", async () => {
    const good = fx.create("lane-1");
    const a = good.intent.action;
    if (a?.$case !== "create") throw new Error("expected create");
    const bad = fx.intent(a, { action: { $case: "create", value: { ...a.value, spec: { ...a.value.spec!, backend: Backend.BACKEND_UNSPECIFIED } } } });
    await expectRefused(bad.bytes, RejectReason.PAYLOAD_MALFORMED);
  });

  it("a backend that is not allowed", async () => {
    fx.control = { ...fx.control, backends: ["systemd"] };
    await expectRefused(fx.create("lane-1", { backend: Backend.BACKEND_CONTAINER, image: IMAGE, runnerVersion: "" }).bytes, RejectReason.NOT_ALLOWED_BACKEND);
  });

  it.each([
    ["another digest", `ghcr.io/acme/runner@sha256:${"b".repeat(64)}`],
    ["a tag instead of a digest", "ghcr.io/acme/runner:latest"],
    ["upper-case digest variant", `ghcr.io/acme/runner@sha256:${"A".repeat(64)}`],
  ])("a container image not on the list (%s)", async (_name, image) => {
    await expectRefused(
      fx.create("lane-1", { backend: Backend.BACKEND_CONTAINER, image, runnerVersion: "" }).bytes,
      RejectReason.NOT_ALLOWED_IMAGE,
    );
  });

  it("the allowed image by digest is accepted", async () => {
    const { result } = await fx.send(fx.create("lane-1", { backend: Backend.BACKEND_CONTAINER, image: IMAGE, runnerVersion: "", mode: LaneMode.LANE_MODE_EPHEMERAL }).bytes);
    expect(result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("an existing lane whose pool is no longer allowed is not touched", async () => {
    fx.executor.setLane("lane-1", "owned", { ...owned, pool: "retired-pool" });
    await expectRefused(fx.intent({ $case: "restart", value: { laneId: "lane-1", force: false } }).bytes, RejectReason.NOT_ALLOWED_POOL, {
      inspected: true,
    });
  });

  it("max lanes: a create beyond control.maxLanes", async () => {
    fx.control = { ...fx.control, maxLanes: 2 };
    expect((await fx.send(fx.create("lane-1").bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.create("lane-2").bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const { result } = await fx.send(fx.create("lane-3").bytes);
    expect(result.reasonCode).toBe(RejectReason.MAX_LANES);
    expect(fx.executor.executeCalls).toHaveLength(2);
  });

  it("max lanes: creates under way at the same time count, so together they never pass control.maxLanes", async () => {
    fx.control = { ...fx.control, maxLanes: 2 };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fx.executor.onExecute = () => gate; // every create is still running when the next arrives
    const sent = ["lane-1", "lane-2", "lane-3"].map((l) => fx.send(fx.create(l).bytes));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const results = (await Promise.all(sent)).map((a) => a.result.reasonCode || "OK").sort();
    expect(results).toEqual([String(RejectReason.MAX_LANES), "OK", "OK"].sort());
    expect(fx.executor.executeCalls).toHaveLength(2);
  });
});

describe("hold", () => {
  it("a held lane refuses mutating intents with LANE_HELD", async () => {
    fx.executor.setLane("lane-1", "owned", owned, true);
    for (const action of [
      { $case: "stop" as const, value: { laneId: "lane-1", force: true } },
      { $case: "restart" as const, value: { laneId: "lane-1", force: false } },
      { $case: "drain" as const, value: { laneId: "lane-1" } },
      { $case: "remove" as const, value: { laneId: "lane-1", force: true, removeToken: undefined } },
    ]) {
      const { result } = await fx.send(fx.intent(action).bytes);
      expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.LANE_HELD });
      expect(result.observed?.held).toBe(true);
    }
    expect(fx.executor.executeCalls).toEqual([]);
  });

  it("release lifts the hold and the next intent runs", async () => {
    fx.executor.setLane("lane-1", "owned", owned, true);
    expect((await fx.send(fx.intent({ $case: "release", value: { laneId: "lane-1" } }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect((await fx.send(fx.intent({ $case: "stop", value: { laneId: "lane-1", force: false } }).bytes)).result.status).toBe(
      ResultStatus.RESULT_STATUS_OK,
    );
    expect(fx.executor.executeCalls.map((c) => c.kind)).toEqual(["release", "stop"]);
  });
});

describe("lane existence", () => {
  it("an action on a lane that does not exist is LANE_NOT_FOUND", async () => {
    await expectRefused(fx.intent({ $case: "stop", value: { laneId: "lane-9", force: false } }).bytes, RejectReason.LANE_NOT_FOUND, { inspected: true });
  });

  it("create is idempotent by lane id: the same spec again is OK without a runtime call", async () => {
    await fx.send(fx.create("lane-1").bytes);
    const again = await fx.send(fx.create("lane-1").bytes);
    expect(again.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });

  it("create of an existing lane with another spec is LANE_EXISTS", async () => {
    await fx.send(fx.create("lane-1").bytes);
    const other = await fx.send(fx.create("lane-1", { runnerVersion: "2.331.0" }).bytes);
    expect(other.result.reasonCode).toBe(RejectReason.LANE_EXISTS);
    expect(fx.executor.executeCalls).toHaveLength(1);
  });
});
