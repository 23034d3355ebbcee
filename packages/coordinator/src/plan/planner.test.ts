import { Health, LaneState, validateLaneId, type Policy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { Action, CreateAction, PlanActionKind } from "./action.js";
import type { Plan, PlanOptions } from "./plan-types.js";
import { plan } from "./planner.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import { buildInputs, githubRunner, hostPolicy, makePolicy, type FleetExtras, type LaneFixture } from "@lanekeeper/testing";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";

function policy(count: number, over: { hosts?: Policy["hosts"]; scopes?: Policy["scopes"]; laneHosts?: string[] } = {}): Policy {
  return makePolicy({
    hosts: over.hosts ?? { h1: hostPolicy(1, true, 4), h2: hostPolicy(2, true, 4), h3: hostPolicy(3, true, 4) },
    scopes: over.scopes ?? { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: over.laneHosts ?? ["h1", "h2", "h3"] }],
  });
}

function lane(n: number, hostId: string, p: Partial<LaneFixture> = {}): LaneFixture {
  return { laneId: `${P}-l${n}`, scope: S, pool: P, hostId, ...p };
}

function run(pol: Policy, lanes: LaneFixture[], extras: FleetExtras = {}, opts: Partial<PlanOptions> = {}): Plan {
  const i = buildInputs(pol, lanes, { nowMs: NOW, ...extras });
  return plan(i.policy, i.observed, i.records, { nowMs: NOW, ...opts });
}

const kinds = (p: Plan): string[] => p.actions.map((a) => `${a.kind}:${a.laneId}`);
const ofKind = <K extends PlanActionKind>(p: Plan, k: K): Extract<Action, { kind: K }>[] =>
  p.actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === k);
const codes = (p: Plan): string[] => p.warnings.map((w) => w.code);

describe("plan: lane ids are never reused", () => {
  it("after a lane is removed (its record deleted), the replacement in the same scope and pool gets a new id", async () => {
    const first = ofKind(run(policy(1), []), "create")[0]?.laneId;
    expect(first).toBeDefined();
    const store = new MemoryLaneStore();
    const rec = await store.create({ laneId: first ?? "", scope: S, pool: P, hostId: "h1", state: "active", createdAtMs: 1, updatedAtMs: 1 });
    await store.delete(rec.laneId, rec.revision);
    const retiredLaneIds = await store.retiredLaneIds();
    expect(retiredLaneIds).toEqual([first]);
    const again = ofKind(run(policy(1), [], {}, { retiredLaneIds }), "create").map((c) => c.laneId);
    expect(again).toHaveLength(1);
    expect(again[0]).not.toBe(first);
    // Deterministic still: the same inputs plan the same id, so plan and apply agree.
    expect(ofKind(run(policy(1), [], {}, { retiredLaneIds }), "create").map((c) => c.laneId)).toEqual(again);
  });
});

describe("plan: convergence and scale-up", () => {
  it("plans nothing for a converged fleet", () => {
    const p = run(policy(3), [lane(1, "h1"), lane(2, "h2"), lane(3, "h3")]);
    expect(p.actions).toEqual([]);
    expect(p.warnings).toEqual([]);
    expect(p.groups).toEqual([{ scope: S, pool: P, desired: 3, current: 3, planned: 3 }]);
  });

  it("creates missing lanes spread over the hosts, with canonical specs and guards", () => {
    const p = run(policy(5), [lane(1, "h1")]);
    const creates = ofKind(p, "create");
    expect(creates).toHaveLength(4);
    const perHost = new Map<string, number>();
    for (const c of [lane(1, "h1").hostId, ...creates.map((c) => c.hostId)]) perHost.set(c, (perHost.get(c) ?? 0) + 1);
    expect([...perHost.values()].sort()).toEqual([1, 2, 2]);
    const c = creates[0] as CreateAction;
    expect(validateLaneId(c.laneId)).toBe(c.laneId);
    expect(c.laneId.startsWith(`${P}-`)).toBe(true);
    expect(c.spec.labels).toEqual(["lk-managed", `lk-lane-${c.laneId}`, `lk-host-${c.hostId}`, `lk-pool-${P}`, "linux", "x64"]);
    expect(c.spec.githubUrl).toBe("https://github.com/acme/api");
    expect(c.spec.runnerVersion).toBe("2.330.0");
    expect(c.guards.map((g) => g.kind)).toEqual(
      expect.arrayContaining(["record-revision", "scope-opted-in", "host-opted-in", "host-allows", "host-capacity", "lane-id-unused"]),
    );
    expect(c.steps).toContain("mint-registration");
    expect(new Set(creates.map((x) => x.laneId)).size).toBe(4);
  });

  it("keeps existing lanes where they are (no moves to balance)", () => {
    const p = run(policy(4), [lane(1, "h1"), lane(2, "h1"), lane(3, "h1")]);
    expect(ofKind(p, "remove")).toEqual([]);
    expect(ofKind(p, "create").map((c) => c.hostId)).toEqual(["h2"]);
  });

  it("is deterministic: the same inputs give the same plan and lane ids", () => {
    const a = run(policy(6), [lane(1, "h2")]);
    const b = run(policy(6), [lane(1, "h2")]);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it("respects capacity and says so when lanes do not fit", () => {
    const pol = policy(5, { hosts: { h1: hostPolicy(1, true, 1), h2: hostPolicy(2, true, 2), h3: hostPolicy(3, true, 0) } });
    const p = run(pol, []);
    expect(ofKind(p, "create").map((c) => c.hostId).sort()).toEqual(["h1", "h2", "h2"]);
    expect(codes(p)).toContain("NO_CAPACITY");
  });

  it("caps creates per plan", () => {
    const p = run(policy(9), [], {}, { maxCreates: 2 });
    expect(ofKind(p, "create")).toHaveLength(2);
    expect(codes(p)).toContain("CREATE_BUDGET");
  });

  it("reuses a drained lane before creating a new one", () => {
    const p = run(policy(2), [
      lane(1, "h1"),
      lane(2, "h2", { record: { state: "draining", drainReason: "scale-down" }, hostLane: { draining: true } }),
    ]);
    expect(kinds(p)).toEqual([`undrain:${P}-l2`]);
    expect(ofKind(p, "undrain")[0]?.reason.code).toBe("REUSE_DRAINED");
  });
});

describe("plan: policy warnings", () => {
  it("warns about a pool without capability labels, and still plans its lanes", () => {
    const base = policy(1);
    const bare = makePolicy({ hosts: base.hosts, scopes: base.scopes, lanes: base.lanes, pools: { [P]: { ...base.pools[P]!, labels: [] } } });
    const p = run(bare, []);
    expect(p.warnings).toEqual([expect.objectContaining({ code: "POOL_NO_LABELS", pool: P })]);
    expect(p.warnings[0]?.message).toContain(`pools.${P}.labels`);
    // It must not send workflows to lk-pool-<pool>: a draining lane drops it (it keeps lk-lane-<id> and lk-draining only).
    expect(p.warnings[0]?.message).toContain("runs-on should name capability labels only");
    expect(p.warnings[0]?.message).not.toMatch(/target it only by lk-pool-/);
    expect(kinds(p)).toHaveLength(1);
    expect(codes(run(policy(1), []))).not.toContain("POOL_NO_LABELS");
  });
});

describe("plan: opt-in, control and allowlist", () => {
  it("does nothing in a scope that has not opted in and says how to opt in", () => {
    const pol = policy(3, { scopes: { [S]: { optIn: false } } });
    const p = run(pol, [lane(1, "h1", { registration: { labels: ["lk-managed", "drifted"] } })]);
    expect(p.actions).toEqual([]);
    const w = p.warnings.find((x) => x.code === "SCOPE_NOT_OPTED_IN");
    expect(w?.message).toContain(`scopes."${S}".optIn: true`);
  });

  it("leaves lanes on a host that is not opted in alone, and places nothing there", () => {
    const pol = policy(3, { hosts: { h1: hostPolicy(1, false, 4), h2: hostPolicy(2, true, 4) }, laneHosts: ["h1", "h2"] });
    const p = run(pol, [lane(1, "h1", { hostLane: { state: LaneState.LANE_STATE_STOPPED } })]);
    expect(p.actions.every((a) => a.hostId !== "h1")).toBe(true);
    expect(ofKind(p, "create").map((c) => c.hostId)).toEqual(["h2", "h2"]);
    expect(p.warnings.find((w) => w.code === "HOST_NOT_OPTED_IN")?.message).toContain("hosts.h1.optIn: true");
  });

  it("turns a host whose agent has control disabled into a warning, not an action", () => {
    const p = run(policy(3), [lane(1, "h1")], { inventory: { h2: { controlEnabled: false } } });
    expect(ofKind(p, "create").map((c) => c.hostId).sort()).toEqual(["h1", "h3"].sort());
    expect(p.warnings.find((w) => w.code === "HOST_CONTROL_DISABLED")?.message).toContain("control.enabled: true");
  });

  it("honours the agent's reported allowlist", () => {
    const allowlist = { scopes: [S], pools: ["other"], backends: ["systemd"], images: [], actions: ["create"], maxLanes: 4 };
    const p = run(policy(2), [], { inventory: { h1: { allowlist }, h2: { allowlist: { ...allowlist, pools: [P], maxLanes: 1 } } } });
    expect(ofKind(p, "create").map((c) => c.hostId).sort()).toEqual(["h2", "h3"]);
    expect(p.warnings.some((w) => w.code === "NO_CAPACITY")).toBe(false);
    const p2 = run(policy(3), [], { knownHosts: ["h1"], inventory: { h1: { allowlist } } });
    expect(ofKind(p2, "create").every((c) => c.hostId !== "h1")).toBe(true);
  });

  it("counts a registration of ours whose host is unknown, so no duplicate is created", () => {
    const p = run(policy(2), [lane(1, "h1"), lane(2, "h2", { record: false, hostLane: false })], { knownHosts: [] });
    expect(ofKind(p, "create")).toEqual([]);
    expect(codes(p)).toContain("ORPHAN_UNVERIFIED");
  });

  it("does not plan a removal the agent's allowlist would refuse, and says which setting is missing", () => {
    const allowlist = { scopes: [S], pools: [P], backends: ["systemd"], images: [], actions: ["create", "drain"], maxLanes: 4 };
    const p = run(policy(0), [lane(1, "h1")], { inventory: { h1: { allowlist } } });
    expect(ofKind(p, "remove")).toEqual([]);
    expect(ofKind(p, "drain")).toEqual([]);
    expect(p.warnings.find((w) => w.code === "HOST_NOT_ALLOWED")?.message).toContain("action remove (control.actions)");
  });

  it("plans without any inventory and says so", () => {
    const p = run(policy(2), [lane(1, "h1")], { knownHosts: [] });
    expect(codes(p)).toContain("NO_INVENTORY");
    expect(ofKind(p, "create")).toHaveLength(1);
  });

  it("takes no action in a scope whose runners could not be listed", () => {
    const p = run(policy(3), [lane(1, "h1")], {
      scopes: { [S]: { scope: S, status: "unavailable", code: "GITHUB_AUTH", message: "bad token" } },
    });
    expect(p.actions).toEqual([]);
    expect(codes(p)).toContain("SCOPE_UNOBSERVED");
  });
});

describe("plan: scale-down never kills a job", () => {
  const fleet = (): LaneFixture[] => [
    lane(1, "h1", { record: { createdAtMs: NOW - 5000 } }),
    lane(2, "h2", { record: { createdAtMs: NOW - 4000 } }),
    lane(3, "h3", { record: { createdAtMs: NOW - 3000 }, registration: { busy: true } }),
    lane(4, "h1", { record: { createdAtMs: NOW - 2000 }, hostLane: { jobRunning: true } }),
    lane(5, "h2", { record: { createdAtMs: NOW - 9000 }, hostLane: { health: Health.HEALTH_CRASH_LOOP } }),
  ];

  it("removes idle lanes only, unhealthy first then newest, at most maxRemovals", () => {
    const p = run(policy(1), fleet(), {}, { maxRemovals: 2, drainBusyOnScaleDown: false });
    expect(ofKind(p, "remove").map((a) => a.laneId)).toEqual([`${P}-l2`, `${P}-l5`]);
    expect(codes(p)).toEqual(expect.arrayContaining(["REMOVAL_BUDGET", "SCALE_DOWN_WAITING"]));
    const r = ofKind(p, "remove")[0];
    expect(r?.guards).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: "no-job-evidence", at: "send-remove" }),
        expect.objectContaining({ kind: "runner-not-busy", at: "delete-registration" }),
        expect.objectContaining({ kind: "runner-id-matches" }),
        expect.objectContaining({ kind: "runner-identity-labels" }),
      ]),
    );
    expect(r?.steps.indexOf("wait-idle")).toBeLessThan(r?.steps.indexOf("send-remove") ?? -1);
  });

  it("drains busy excess lanes instead of removing them (GitHub busy, or a job on the host despite busy=false)", () => {
    const p = run(policy(1), fleet(), {}, { maxRemovals: 10 });
    const removed = ofKind(p, "remove").map((a) => a.laneId);
    expect(removed.sort()).toEqual([`${P}-l1`, `${P}-l2`, `${P}-l5`].sort());
    expect(ofKind(p, "drain").map((a) => a.laneId)).toEqual([`${P}-l4`]);
    expect(removed).not.toContain(`${P}-l3`);
    expect(removed).not.toContain(`${P}-l4`);
  });

  it("removes nothing when job evidence is unknown (no inventory)", () => {
    const p = run(policy(1), fleet(), { knownHosts: [] });
    expect(ofKind(p, "remove")).toEqual([]);
    expect(ofKind(p, "drain")).toEqual([]);
    expect(codes(p)).toContain("SCALE_DOWN_WAITING");
  });

  it("removes a drained lane once it is idle", () => {
    const p = run(policy(1), [lane(1, "h1"), lane(2, "h2", { record: { state: "draining", drainReason: "scale-down" }, hostLane: { draining: true } })]);
    expect(kinds(p)).toEqual([`remove:${P}-l2`]);
  });

  it("moves a lane off a host no longer listed: create first, then remove it once idle", () => {
    const p = run(policy(2, { laneHosts: ["h2", "h3"] }), [lane(1, "h1"), lane(2, "h2")]);
    const c = ofKind(p, "create");
    expect(c.map((a) => a.hostId)).toEqual(["h3"]);
    const r = ofKind(p, "remove");
    expect(r.map((a) => a.laneId)).toEqual([`${P}-l1`]);
    expect(r[0]?.reason.code).toBe("MISPLACED");
    expect(r[0]?.dependsOn).toEqual([c[0]?.id]);
    expect(p.actions.indexOf(c[0] as Action)).toBeLessThan(p.actions.indexOf(r[0] as Action));
  });

  it("scales a group removed from the policy down to zero, slowly", () => {
    const pol = policy(1);
    const p = run({ ...pol, lanes: [] }, [lane(1, "h1"), lane(2, "h2"), lane(3, "h3")], {}, { maxRemovals: 2 });
    expect(ofKind(p, "remove")).toHaveLength(2);
    expect(ofKind(p, "remove")[0]?.reason.code).toBe("NOT_IN_POLICY");
  });
});

describe("plan: unmanaged and foreign runners are never touched", () => {
  it("ignores runners without lanekeeper labels and warns about foreign ones", () => {
    const p = run(policy(0), [lane(1, "h1")], {
      runners: [
        { scope: S, runner: githubRunner(1, ["self-hosted", "linux"], { busy: false }) },
        { scope: S, runner: githubRunner(2, ["lk-managed", "lk-lane-x1", "lk-host-elsewhere", "lk-pool-p"]) },
        { scope: S, runner: githubRunner(3, ["lk-managed", "lk-draining"]) },
      ],
    });
    const ids = p.actions.flatMap((a) => ("runnerId" in a ? [a.runnerId] : []));
    expect(ids).not.toContain(1);
    expect(ids).not.toContain(2);
    expect(ids).not.toContain(3);
    expect(p.classification.unmanaged.map((r) => r.runner.id)).toEqual([1]);
    expect(p.classification.foreign.map((r) => r.runner.id)).toEqual([2, 3]);
    expect(codes(p)).toContain("FOREIGN_RUNNERS");
    expect(kinds(p)).toEqual([`remove:${P}-l1`]);
  });
});

describe("plan: repairs", () => {
  it("relabels a runner whose capability labels drifted", () => {
    const l = lane(1, "h1", { registration: { labels: ["lk-managed", `lk-lane-${P}-l1`, "lk-host-h1", `lk-pool-${P}`, "linux"] } });
    const p = run(policy(1), [l]);
    const r = ofKind(p, "relabel");
    expect(r).toHaveLength(1);
    expect(r[0]?.to).toEqual(["lk-managed", `lk-lane-${P}-l1`, "lk-host-h1", `lk-pool-${P}`, "linux", "x64"]);
  });

  it("undrains a lane left draining by an interrupted operation", () => {
    const l = lane(1, "h1", { registration: { labels: ["lk-managed", `lk-lane-${P}-l1`, "lk-host-h1", `lk-pool-${P}`, "lk-draining"] } });
    const p = run(policy(1), [l]);
    expect(kinds(p)).toEqual([`undrain:${P}-l1`]);
    expect(ofKind(p, "undrain")[0]?.reason.code).toBe("LEFTOVER_DRAIN");
  });

  it("restarts a stopped lane, guarded by job evidence at the restart", () => {
    const p = run(policy(1), [lane(1, "h1", { hostLane: { state: LaneState.LANE_STATE_STOPPED } })]);
    const r = ofKind(p, "restart");
    expect(r).toHaveLength(1);
    expect(r[0]?.guards).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "no-job-evidence", at: "send-restart" })]));
  });

  it("re-arms an ephemeral lane that finished its job, and prefers it when scaling down", () => {
    const eph = makePolicy({
      ...policy(2),
      pools: { [P]: { labels: ["linux"], backend: "systemd", mode: "ephemeral", runnerVersion: "2.330.0" } },
    });
    const unarmed = lane(1, "h1", { registration: false, hostLane: { state: LaneState.LANE_STATE_IDLE_UNARMED, runnerId: 0 } });
    const p = run(eph, [unarmed, lane(2, "h2")]);
    expect(kinds(p)).toEqual([`arm:${P}-l1`]);
    const a = ofKind(p, "arm")[0];
    expect(a?.runnerName).toBe(`${P}-l1`);
    expect(a?.labels).toEqual(["lk-managed", `lk-lane-${P}-l1`, "lk-host-h1", `lk-pool-${P}`, "linux"]);
    expect(a?.steps).toEqual(["mint-registration", "send-arm", "verify-online", "write-record"]);
    const down = run({ ...eph, lanes: [{ scope: S, pool: P, count: 1, hosts: ["h1", "h2"] }] }, [unarmed, lane(2, "h2", { record: { createdAtMs: NOW } })]);
    expect(kinds(down)).toEqual([`remove:${P}-l1`]);
  });

  it("leaves a held lane alone", () => {
    const p = run(policy(1), [lane(1, "h1", { hostLane: { state: LaneState.LANE_STATE_STOPPED, held: true } })]);
    expect(p.actions).toEqual([]);
    expect(codes(p)).toContain("LANE_HELD");
  });

  it("follows an ephemeral lane's new registration id, and completes a finished create", () => {
    const p = run(policy(2), [
      lane(1, "h1", { record: { runnerId: 4999 } }),
      lane(2, "h2", { record: { state: "creating", createdAtMs: NOW - 1000 } }),
    ]);
    const u = ofKind(p, "update-record");
    expect(u.map((a) => [a.laneId, a.reason.code])).toEqual([
      [`${P}-l1`, "RUNNER_ID_CHANGED"],
      [`${P}-l2`, "CREATE_COMPLETED"],
    ]);
  });

  it("finishes or resumes an interrupted removal", () => {
    const gone = lane(1, "h1", { record: { state: "removing" }, registration: false, hostLane: false });
    const half = lane(2, "h2", { record: { state: "removing" }, hostLane: false });
    const p = run(policy(0), [gone, half]);
    expect(kinds(p)).toEqual([`remove:${P}-l2`, `forget-record:${P}-l1`]);
    expect(ofKind(p, "remove")[0]?.reason.code).toBe("RESUME_REMOVE");
  });

  it("flags disagreeing markers and does nothing about them", () => {
    const p = run(policy(1), [lane(1, "h1", { hostLane: { scope: "acme/other" } })]);
    expect(p.actions).toEqual([]);
    expect(p.warnings.find((w) => w.code === "LANE_NEEDS_ATTENTION")?.message).toContain("HOST_MARKER_MISMATCH");
  });
});

describe("plan: orphans, two-phase", () => {
  const grace = 300_000;

  it("marks a registration without a lane, then deletes it on a later cycle only if it is still the same runner", () => {
    const orphan = lane(1, "h1", { record: false, hostLane: false, registration: { id: 777 } });
    const p1 = run(policy(0), [orphan]);
    const mark = ofKind(p1, "mark-orphan");
    expect(mark).toHaveLength(1);
    expect(mark[0]?.mark).toMatchObject({ kind: "registration-without-lane", runnerId: 777, markedAtMs: NOW });
    expect(ofKind(p1, "cleanup-orphan")).toEqual([]);

    const marked = (markedAtMs: number, runnerId = 777): LaneFixture =>
      lane(1, "h1", {
        hostLane: false,
        registration: { id: 777 },
        record: { state: "orphaned", runnerId, orphan: { kind: "registration-without-lane", markedAtMs, runnerId } },
      });
    // Same cycle window: too young.
    expect(run(policy(0), [marked(NOW - 1000)]).actions).toEqual([]);
    // A later cycle: cleaned up, guarded by runner id and identity labels.
    const p2 = run(policy(0), [marked(NOW - grace - 1)]);
    const c = ofKind(p2, "cleanup-orphan");
    expect(c).toHaveLength(1);
    expect(c[0]?.steps).toEqual(["delete-registration", "verify-gone", "delete-record"]);
    expect(c[0]?.guards).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: "runner-id-matches", runnerId: 777 }),
        expect.objectContaining({ kind: "runner-identity-labels", runnerId: 777 }),
        expect.objectContaining({ kind: "orphan-still-marked" }),
        expect.objectContaining({ kind: "lane-absent-on-host" }),
      ]),
    );
    // A different runner now carries the identity: not the orphan that was marked.
    expect(ofKind(run(policy(0), [marked(NOW - grace - 1, 778)]), "cleanup-orphan")).toEqual([]);
    // A busy orphan is not deleted.
    const busy = lane(1, "h1", {
      hostLane: false,
      registration: { id: 777, busy: true },
      record: { state: "orphaned", runnerId: 777, orphan: { kind: "registration-without-lane", markedAtMs: NOW - grace - 1, runnerId: 777 } },
    });
    expect(ofKind(run(policy(0), [busy]), "cleanup-orphan")).toEqual([]);
  });

  it("does not conclude an orphan from an unknown host or an incomplete list", () => {
    const orphan = lane(1, "h1", { record: false, hostLane: false });
    expect(run(policy(0), [orphan], { knownHosts: [] }).actions).toEqual([]);
    const noReg = lane(2, "h1", { registration: false });
    const p = run(policy(1), [noReg], {
      scopes: { [S]: { scope: S, status: "ok", runners: [], complete: false, observedAtMs: NOW } },
    });
    expect(ofKind(p, "mark-orphan")).toEqual([]);
  });

  it("marks a lane without registration (and replaces it), then removes it from its host later", () => {
    const p1 = run(policy(1), [lane(1, "h1", { registration: false, hostLane: { runnerId: 4242 } })]);
    expect(ofKind(p1, "mark-orphan")[0]?.orphanKind).toBe("lane-without-registration");
    expect(ofKind(p1, "create")).toHaveLength(1);
    const p2 = run(policy(1), [
      lane(1, "h1", {
        registration: false,
        hostLane: { runnerId: 4242 },
        record: { state: "orphaned", orphan: { kind: "lane-without-registration", markedAtMs: NOW - grace - 1, previousState: "active" } },
      }),
      lane(2, "h2"),
    ]);
    const c = ofKind(p2, "cleanup-orphan");
    expect(c.map((a) => a.steps)).toEqual([["send-remove", "verify-gone", "delete-record"]]);
    expect(c[0]?.guards).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "registration-absent", runnerId: 4242 })]));
  });

  it("forgets a record with nothing left, through the same two phases", () => {
    const p1 = run(policy(0), [lane(1, "h1", { registration: false, hostLane: false })]);
    expect(ofKind(p1, "mark-orphan")[0]?.orphanKind).toBe("record-without-lane");
    const p2 = run(policy(0), [
      lane(1, "h1", { registration: false, hostLane: false, record: { state: "orphaned", orphan: { kind: "record-without-lane", markedAtMs: NOW - grace - 1 } } }),
    ]);
    expect(ofKind(p2, "cleanup-orphan").map((a) => a.steps)).toEqual([["delete-record"]]);
  });

  it("clears a mark when both halves are back", () => {
    const p = run(policy(1), [
      lane(1, "h1", { record: { state: "orphaned", orphan: { kind: "registration-without-lane", markedAtMs: NOW - 10, previousState: "active" } } }),
    ]);
    expect(ofKind(p, "update-record")[0]?.changes).toMatchObject({ state: "active" });
  });
});
