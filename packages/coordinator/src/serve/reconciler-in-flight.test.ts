// How `serve` cycles run their actions in the background (reconciler.ts, in-flight-actions.ts): a cycle does not
// wait for its actions, yet the next plan counts a create in flight as a starting lane (no second create for the
// same demand), never starts a second action on a lane with one in flight, and never runs more than the policy's
// applyConcurrency actions at once. A failed background action still ends in its safe state with its audit
// records. The world is in memory: a lane store, an inventory, a GitHub that lists what the test says; the engine
// is scripted, except in the failure test, which runs the real ApplyEngine.
import { canonicalLabels, InventorySnapshot, type LaneObservation, type Policy } from "@lanekeeper/shared";
import { hostPolicy, laneObservation, makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { ApplyEngine } from "../apply/apply-engine.js";
import type { ApplyEvent, ApplyReport, ActionOutcome } from "../apply/apply-events.js";
import type { RunnablePlan } from "../apply/apply-options.js";
import { MemoryAuditTrail } from "../audit/coordinator-audit.js";
import type { GitHubClient } from "../github/github-client.js";
import type { GitHubRunner } from "../github/github-types.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import type { Action } from "../plan/action.js";
import { actionUnits, selectUnits } from "./in-flight-actions.js";
import { Reconciler, type ReconcilerOptions } from "./reconciler.js";

const S = "acme/api";
const P = "linux-x64";
const H = "h1";

function policy(count: number, applyConcurrency = 4): Policy {
  const p = makePolicy({
    hosts: { [H]: hostPolicy(1, true, 32) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: [H] }],
  });
  return { ...p, coordinator: { ...p.coordinator, applyConcurrency } };
}

/** GitHub as far as observing and guards go: the runners the test puts in `runners`. */
function github(runners: GitHubRunner[]): GitHubClient {
  const unavailable = (): Promise<never> => Promise.reject(Object.assign(new Error("GitHub said 500"), { code: "GITHUB_API" }));
  return {
    listRunners: (scope: string) => Promise.resolve({ scope, runners: [...runners], notModified: false, complete: true }),
    getRunner: (_s: string, id: number) => Promise.resolve(runners.find((r) => r.id === id)),
    listRunnerDownloads: () => Promise.resolve([]),
    generateJitConfig: unavailable,
    createRegistrationToken: unavailable,
  } as unknown as GitHubClient;
}

function inventory(now: () => number, lanes: LaneObservation[] = []) {
  return {
    latest: (hostId: string) =>
      Promise.resolve({
        snapshot: InventorySnapshot.fromPartial({ hostId, takenAtMs: now(), agentVersion: "0.1.0", controlEnabled: true, lanes: [...lanes] }),
        receivedAtMs: now(),
      }),
  };
}

/**
 * An engine whose actions the test ends: each run writes its first record like the real create does (after a
 * moment, as the real one does after its guards, lease and audit), then waits for {@link end}.
 */
class ScriptedEngine {
  readonly runs: { actions: readonly Action[]; finish: () => void }[] = [];
  private readonly finishers: (() => void)[] = [];
  running = 0;
  maxRunning = 0;
  constructor(private readonly store: MemoryLaneStore, private readonly now: () => number) {}

  async run(plan: RunnablePlan, opts: { onEvent?: (e: ApplyEvent) => void } = {}): Promise<ApplyReport> {
    this.running += plan.actions.length;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const outcomes: ActionOutcome[] = [];
    let finish = (): void => undefined;
    const ended = new Promise<void>((r) => (finish = r));
    this.runs.push({ actions: plan.actions, finish });
    this.finishers.push(finish);
    for (const a of plan.actions) {
      opts.onEvent?.({ type: "step", actionId: a.id, laneId: a.laneId, step: a.steps[0] ?? "write-record" });
      await new Promise((r) => setTimeout(r, 30));
      if (a.kind === "create") {
        await this.store.create({ laneId: a.laneId, scope: a.scope, pool: a.pool, hostId: a.hostId, state: "creating", createdAtMs: this.now(), updatedAtMs: this.now(), operationId: `op-${a.laneId}` });
      }
      opts.onEvent?.({ type: "step", actionId: a.id, laneId: a.laneId, step: a.steps[1] ?? "write-record" });
    }
    await ended;
    for (const a of plan.actions) {
      const r = await this.store.get(a.laneId);
      if (a.kind === "create" && r !== undefined) await this.store.update({ ...r, state: "active", runnerId: 100 }, r.revision);
      const o = { actionId: a.id, kind: a.kind, laneId: a.laneId, hostId: a.hostId, scope: a.scope, operationId: "op", status: "succeeded", stepsDone: a.steps, intentIds: [], elapsedMs: 1 } as ActionOutcome;
      outcomes.push(o);
      opts.onEvent?.({ type: "action-end", outcome: o });
    }
    this.running -= plan.actions.length;
    return { planId: plan.planId, dryRun: false, outcomes, ok: true };
  }

  /** End the oldest run still going. */
  end(): void {
    this.finishers.shift()?.();
  }
}

/** Exposes the loop's own cycle (plan and start, do not wait). */
class TestReconciler extends Reconciler {
  background(): Promise<unknown> {
    return this.backgroundCycle();
  }
}

/** Counts observations: each cycle lists the lane records once. */
class CountingStore extends MemoryLaneStore {
  lists = 0;
  override list(): ReturnType<MemoryLaneStore["list"]> {
    this.lists++;
    return super.list();
  }
}

function world(count: number, concurrency = 4, pokeGapMs?: number) {
  const now = (): number => Date.now();
  const store = new CountingStore([]);
  const runners: GitHubRunner[] = [];
  const hostLanes: LaneObservation[] = [];
  const engine = new ScriptedEngine(store, now);
  const audit = new MemoryAuditTrail();
  const pol = policy(count, concurrency);
  const ctx = { policy: pol, github: github(runners), store, inventory: inventory(now, hostLanes), audit, engine: () => engine as unknown as ApplyEngine } as unknown as ReconcilerOptions["ctx"];
  return { store, runners, hostLanes, engine, audit, reconciler: new TestReconciler({ ctx, intervalMs: 3_600_000, ...(pokeGapMs === undefined ? {} : { pokeGapMs }) }) };
}

const kinds = (e: ScriptedEngine): string[] => e.runs.flatMap((r) => r.actions.map((a) => `${a.kind}:${a.laneId}`));

describe("serve cycles with actions in flight", () => {
  it("a cycle returns before its creates end, and the next plan counts them as starting: nothing is created twice", async () => {
    const w = world(3);
    await w.reconciler.background();
    expect(w.engine.runs.map((r) => r.actions.map((a) => a.kind))).toEqual([["create"], ["create"], ["create"]]);
    expect(w.reconciler.lanesInFlight().size).toBe(3);
    // Demand unchanged, creates still running: a new cycle plans from the `creating` records and starts nothing.
    await w.reconciler.background();
    await w.reconciler.background();
    expect(w.engine.runs.length).toBe(3);
    expect((await w.store.list()).map((r) => r.state)).toEqual(["creating", "creating", "creating"]);
    for (let i = 0; i < 3; i++) w.engine.end();
    await w.reconciler.stop();
    expect(w.reconciler.lanesInFlight().size).toBe(0);
  });

  it("never starts a second action on a lane whose action is in flight", async () => {
    const w = world(1);
    await w.reconciler.background();
    const [create] = w.engine.runs.flatMap((r) => r.actions);
    if (create === undefined) throw new Error("expected a create");
    // The lane is up on GitHub before its create has verified it: the planner now wants CREATE_COMPLETED on it.
    w.hostLanes.push(laneObservation({ laneId: create.laneId, scope: S, pool: P, runnerId: 100, runnerName: create.laneId }));
    w.runners.push({ id: 100, name: create.laneId, os: "Linux", status: "online", busy: false, labels: canonicalLabels({ laneId: create.laneId, hostId: H, pool: P, capabilityLabels: ["linux", "x64"] }).map((name) => ({ name, type: "custom" as const })), ephemeral: false, runnerGroupId: 1 });
    const r = await w.reconciler.cycle();
    expect(r.report?.outcomes).toEqual([]);
    expect(kinds(w.engine)).toEqual([`create:${create.laneId}`]);
    expect(r.deferred).toBe(1);
    w.engine.end();
    await w.reconciler.stop();
  });

  it("runs at most applyConcurrency actions at once; a later cycle uses a freed slot", async () => {
    const w = world(10, 4);
    await w.reconciler.background();
    expect(w.engine.runs.length).toBe(4);
    await w.reconciler.background();
    expect(w.engine.runs.length).toBe(4); // every slot taken: the other six creates wait
    w.engine.end();
    await new Promise((r) => setTimeout(r, 20));
    await w.reconciler.background();
    expect(w.engine.runs.length).toBe(5);
    expect(w.engine.maxRunning).toBe(4);
    expect((await w.store.list()).length).toBe(5);
    for (let i = 0; i < 5; i++) w.engine.end();
    await w.reconciler.stop();
  });

  it("an action that ends pokes the loop while planned actions wait for a slot, and only then", async () => {
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 120));
    const busy = world(6, 4, 0);
    busy.reconciler.start();
    await tick();
    expect(busy.engine.runs.length).toBe(4);
    busy.engine.end(); // two creates wait for a slot: the end starts a cycle, which takes the freed slot
    await tick();
    expect(busy.engine.runs.length).toBe(5);
    for (let i = 0; i < 5; i++) busy.engine.end();
    await busy.reconciler.stop();

    const calm = world(2, 4, 0);
    calm.reconciler.start();
    await tick();
    expect(calm.engine.runs.length).toBe(2);
    const cycles = calm.store.lists;
    calm.engine.end(); // nothing waits: no cycle just for observing
    calm.engine.end();
    await tick();
    expect(calm.store.lists).toBe(cycles);
    await calm.reconciler.stop();
  });

  it("a failed background action ends in its safe state with planned, started and failed audit records, and frees its lane", async () => {
    const store = new MemoryLaneStore([]);
    const audit = new MemoryAuditTrail();
    const pol = policy(1);
    const gh = github([]);
    const inv = inventory(() => Date.now());
    const engine = (): ApplyEngine => new ApplyEngine({ policy: pol, github: gh, store, inventory: inv, audit, dispatcher: {} as never });
    const r = new TestReconciler({ ctx: { policy: pol, github: gh, store, inventory: inv, audit, engine } as unknown as ReconcilerOptions["ctx"], intervalMs: 3_600_000 });
    await r.background();
    await r.stop();
    expect(r.lanesInFlight().size).toBe(0);
    const laneId = audit.records.find((x) => x.action === "create")?.laneId;
    expect(audit.records.filter((x) => x.laneId === laneId).map((x) => `${x.action}:${x.phase}`)).toEqual(["create:planned", "create:started", "create:failed"]);
    const failed = audit.records.find((x) => x.phase === "failed");
    expect(failed?.details).toMatchObject({ failedStep: "mint-registration", safeState: "untouched" });
    // Safe: nothing reached the host or GitHub, and the `creating` record the create wrote first is gone again.
    expect(await store.get(laneId ?? "")).toBeUndefined();
    // The lane is free again: the next cycle tries once more, under a new lane id.
    await r.background();
    await r.stop();
    expect(audit.records.filter((x) => x.action === "create" && x.phase === "failed").length).toBe(2);
  });
});

describe("selectUnits", () => {
  const act = (laneId: string, kind: Action["kind"], dependsOn: string[] = []): Action =>
    ({ id: `${kind}:${laneId}`, kind, laneId, scope: S, pool: P, hostId: H, dependsOn, steps: [], guards: [], evidence: [], reason: { code: "SCALE_UP", message: "" } }) as unknown as Action;

  it("keeps an action with what it depends on and one lane's actions together, in plan order", () => {
    const units = actionUnits([act("a", "create"), act("b", "remove", ["create:a"]), act("c", "update-record"), act("c", "relabel")]);
    expect(units.map((u) => u.map((a) => a.id))).toEqual([["create:a", "remove:b"], ["update-record:c", "relabel:c"]]);
  });

  it("skips lanes in flight, bounds actions and removals in flight, and starts capacity first", () => {
    const units = actionUnits([act("r1", "remove"), act("r2", "remove"), act("x", "restart"), act("y", "restart"), act("c1", "create"), act("c2", "create"), act("busy", "arm")]);
    const pick = selectUnits(units, { lanes: new Set(["busy"]), running: 1, removals: 1 }, { concurrency: 5, maxRemovals: 2 });
    expect(pick.start.map((u) => u[0]?.id)).toEqual(["create:c1", "create:c2", "remove:r1", "restart:x"]);
    expect(pick.deferred.map((d) => `${d.unit[0]?.id ?? ""}:${d.why}`)).toEqual(["arm:busy:lane-in-flight", "remove:r2:removal-limit", "restart:y:no-slot"]);
    // With nothing running, a unit larger than the concurrency still starts (alone).
    expect(selectUnits([[act("a", "create"), act("b", "create")]], { lanes: new Set(), running: 0, removals: 0 }, { concurrency: 1, maxRemovals: 2 }).start.length).toBe(1);
  });
});
