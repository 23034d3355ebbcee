// How the apply engine schedules a plan's actions: side by side up to the concurrency, one lane's actions in plan
// order, an action after the actions it depends on (skipped when one of them did not succeed), outcomes in plan
// order. The actions here only write lane records (a store that holds each write open for a moment shows what
// overlaps); what each step does against GitHub and the agents is covered by the integration suites.
import { describe, expect, it } from "vitest";
import { MemoryAuditTrail } from "../audit/coordinator-audit.js";
import type { LaneRecord, StoredLaneRecord } from "../observe/lane-record.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import type { UpdateRecordAction } from "../plan/action.js";
import { laneRecord, makePolicy } from "@lanekeeper/testing";
import { STEPS } from "../plan/steps.js";
import { ApplyEngine, type ApplyEngineOptions } from "./apply-engine.js";

/** A store whose updates take `delayMs`, recording which lanes were being written at the same time. */
class SlowStore extends MemoryLaneStore {
  private inFlight = new Set<string>();
  maxInFlight = 0;
  readonly order: string[] = [];

  constructor(records: readonly LaneRecord[], private readonly delayMs = 20) {
    super(records);
  }

  override async update(record: LaneRecord, expectedRevision: number): Promise<StoredLaneRecord> {
    this.inFlight.add(record.laneId);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight.delete(record.laneId);
    this.order.push(`${record.laneId}:${record.state}`);
    return super.update(record, expectedRevision);
  }
}

const record = (laneId: string): LaneRecord => laneRecord(laneId);

const update = (laneId: string, state: LaneRecord["state"], dependsOn: string[] = [], id = `update-record:${laneId}:${state}`): UpdateRecordAction => ({
  id,
  kind: "update-record",
  laneId,
  scope: "acme/api",
  pool: "linux-x64",
  hostId: "build01",
  reason: { code: "CREATE_COMPLETED", message: "test" },
  guards: [],
  evidence: [],
  steps: STEPS["update-record"],
  dependsOn,
  changes: { state },
});

/** Anything but the store and the audit trail is out of bounds for these actions. */
const untouchable = new Proxy({}, {
  get: (_t, p) => {
    throw new Error(`the engine used ${String(p)}`);
  },
});

function engine(store: SlowStore, over: Partial<ApplyEngineOptions> = {}): { engine: ApplyEngine; audit: MemoryAuditTrail } {
  const audit = new MemoryAuditTrail();
  const o = { policy: makePolicy(), github: untouchable, store, dispatcher: untouchable, inventory: untouchable, audit, ...over } as ApplyEngineOptions;
  return { engine: new ApplyEngine(o), audit };
}

describe("apply engine scheduling", () => {
  it("runs at most `concurrency` actions at once and reports outcomes in plan order", async () => {
    const lanes = ["a", "b", "c", "d", "e"];
    const store = new SlowStore(lanes.map(record));
    const { engine: e } = engine(store, { concurrency: 2 });
    const report = await e.run({ planId: "p", actions: lanes.map((l) => update(l, "active")) });
    expect(report.outcomes.map((o) => [o.laneId, o.status])).toEqual(lanes.map((l) => [l, "succeeded"]));
    expect(store.maxInFlight).toBe(2);
  });

  it("takes the policy's applyConcurrency (4 by default)", async () => {
    const lanes = ["a", "b", "c", "d", "e", "f"];
    const store = new SlowStore(lanes.map(record));
    await engine(store).engine.run({ planId: "p", actions: lanes.map((l) => update(l, "active")) });
    expect(store.maxInFlight).toBe(4);
  });

  it("runs one lane's actions in plan order, never together", async () => {
    const store = new SlowStore([record("a"), record("b")]);
    const { engine: e } = engine(store, { concurrency: 8 });
    const report = await e.run({ planId: "p", actions: [update("a", "active"), update("b", "active"), update("a", "draining"), update("a", "removing")] });
    expect(report.ok).toBe(true);
    expect(store.order.filter((x) => x.startsWith("a:"))).toEqual(["a:active", "a:draining", "a:removing"]);
  });

  it("an action waits for the actions it depends on, and is skipped when one of them did not succeed", async () => {
    // "missing" has no record, so its update fails (RECORD_MISSING); "b" waits for "a", "c" depends on the failure.
    const store = new SlowStore([record("a"), record("b"), record("c")], 30);
    const { engine: e, audit } = engine(store, { concurrency: 8 });
    const actions = [update("a", "active"), update("missing", "active"), update("b", "active", ["update-record:a:active"]), update("c", "active", ["update-record:missing:active"])];
    const report = await e.run({ planId: "p", actions });
    expect(report.outcomes.map((o) => [o.laneId, o.status, o.code ?? ""])).toEqual([
      ["a", "succeeded", ""],
      ["missing", "failed", "RECORD_MISSING"],
      ["b", "succeeded", ""],
      ["c", "skipped", "DEPENDENCY_FAILED"],
    ]);
    expect(store.order).toEqual(["a:active", "b:active"]);
    // A dependency later in the plan, or not in it at all, counts as not succeeded: nothing waits for it.
    const later = await e.run({ planId: "q", actions: [update("c", "active", ["update-record:b:draining"]), update("b", "draining")] });
    expect(later.outcomes.map((o) => o.status)).toEqual(["skipped", "succeeded"]);
    expect(audit.records.filter((r) => r.laneId === "c" && r.phase === "started")).toEqual([]);
  });
});
