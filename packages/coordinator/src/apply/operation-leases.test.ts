// The apply engine and the operation leases: every running action holds one on its operation id (so another
// coordinator can tell it from an action a crash interrupted), gives it up when it ends, and stops before sending
// anything once it cannot be sure it still holds it.
import { describe, expect, it } from "vitest";
import { MemoryAuditTrail } from "../audit/coordinator-audit.js";
import type { LaneRecord, StoredLaneRecord } from "../observe/lane-record.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import type { RemoveAction, UndrainAction, UpdateRecordAction } from "../plan/action.js";
import { laneRecord, makePolicy } from "@lanekeeper/testing";
import { STEPS } from "../plan/steps.js";
import { ApplyEngine, type ApplyEngineOptions } from "./apply-engine.js";
import { MemoryOperationLeases } from "./operation-leases.js";

const base = { scope: "acme/api", pool: "linux-x64", hostId: "build01", guards: [], evidence: [], dependsOn: [] };

const untouchable = new Proxy({}, {
  get: (_t, p) => {
    throw new Error(`the engine used ${String(p)}`);
  },
});

/** A store that runs `onUpdate`/`onGet` while the action is between its steps. */
class HookStore extends MemoryLaneStore {
  onUpdate: () => Promise<void> = () => Promise.resolve();
  onGet: () => void = () => undefined;
  override async update(record: LaneRecord, rev: number): Promise<StoredLaneRecord> {
    await this.onUpdate();
    return super.update(record, rev);
  }
  override get(laneId: string): Promise<StoredLaneRecord | undefined> {
    this.onGet();
    return super.get(laneId);
  }
}

function engine(store: MemoryLaneStore, leases: MemoryOperationLeases): ApplyEngine {
  const o = { policy: makePolicy(), github: untouchable, store, dispatcher: untouchable, inventory: untouchable, audit: new MemoryAuditTrail(), leases };
  return new ApplyEngine(o as unknown as ApplyEngineOptions);
}

describe("operation leases in the apply engine", () => {
  it("an action holds a lease on its operation id while it runs and releases it when it ends", async () => {
    const store = new HookStore([laneRecord("a")]);
    const leases = new MemoryOperationLeases();
    let seen: string[] = [];
    store.onUpdate = async () => {
      seen = [...(await leases.live(heldIds(leases)))];
    };
    const action: UpdateRecordAction = { ...base, id: "u", kind: "update-record", laneId: "a", reason: { code: "CREATE_COMPLETED", message: "t" }, steps: STEPS["update-record"], changes: { state: "active" } };
    const report = await engine(store, leases).run({ planId: "p", actions: [action] });
    expect(report.ok).toBe(true);
    expect(seen).toEqual([report.outcomes[0]?.operationId]);
    expect(heldIds(leases)).toEqual([]);
  });

  it("an action whose lease is lost sends nothing: it fails with OPERATION_LEASE_LOST before the dispatcher is used", async () => {
    const store = new HookStore([laneRecord("a", { state: "active" })]);
    const leases = new MemoryOperationLeases();
    // The holder "dies" right after the action started (its lease ages out while it is frozen).
    store.onGet = () => {
      for (const id of heldIds(leases)) leases.expire(id);
    };
    const action: UndrainAction = {
      ...base,
      id: "undrain:a",
      kind: "undrain",
      laneId: "a",
      runnerId: undefined,
      labels: [],
      reason: { code: "LEFTOVER_DRAIN", message: "t" },
      steps: ["send-undrain"],
    };
    const report = await engine(store, leases).run({ planId: "p", actions: [action] });
    expect(report.outcomes[0]).toMatchObject({ status: "failed", code: "OPERATION_LEASE_LOST", failedStep: "send-undrain" });
  });

  it("a drain wait stops as soon as its lease is lost (another coordinator may resume it): nothing is sent after it", async () => {
    const store = new HookStore([laneRecord("a", { state: "removing" })]);
    const leases = new MemoryOperationLeases();
    let polls = 0;
    // The job keeps running (no inventory newer than the drain, so never idle); the process is frozen past its
    // lease during the first pause of the wait.
    const github = { listRunners: () => Promise.resolve({ runners: [], complete: true }), getRunner: () => Promise.resolve(undefined) };
    const inventory = {
      latest: () => {
        polls++;
        return Promise.resolve(undefined);
      },
    };
    const sleep = async (): Promise<void> => {
      for (const id of heldIds(leases)) leases.expire(id);
      await new Promise((r) => setTimeout(r, 5));
    };
    const o = { policy: makePolicy(), github, store, dispatcher: untouchable, inventory, audit: new MemoryAuditTrail(), leases, sleep, drain: { settleMs: 1000, pollMs: 10, deadlineMs: 500 } };
    const action: RemoveAction = { ...base, id: "remove:a", kind: "remove", laneId: "a", runnerId: undefined, reason: { code: "RESUME_REMOVE", message: "t" }, steps: ["wait-idle", "send-remove"] };
    const report = await new ApplyEngine(o as unknown as ApplyEngineOptions).run({ planId: "p", actions: [action] });
    expect(report.outcomes[0]).toMatchObject({ status: "failed", code: "OPERATION_LEASE_LOST", failedStep: "wait-idle" });
    // One look, one pause, then it stopped: it did not wait out the deadline (DRAIN_DEADLINE).
    expect(polls).toBe(1);
  });
});

function heldIds(leases: MemoryOperationLeases): string[] {
  return [...(leases as unknown as { held: Map<string, unknown> }).held.keys()];
}
