import fc from "fast-check";
import { LaneMode, LaneState, type Policy, type PoolPolicy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { RunnerReleaseObservation } from "../observe/runner-releases.js";
import type { Action, PlanActionKind, UpgradeAction } from "./action.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";
import { compareRunnerVersions, minorLag } from "./runner-version.js";
import { UPGRADE_EPHEMERAL_STEPS } from "./steps.js";
import { buildInputs, hostPolicy, makePolicy, type FleetExtras, type LaneFixture } from "@lanekeeper/testing";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";
const IMG_OLD = `ghcr.io/acme/runner@sha256:${"a".repeat(64)}`;
const IMG_NEW = `ghcr.io/acme/runner@sha256:${"b".repeat(64)}`;

function policy(count: number, pool: Partial<PoolPolicy> = {}): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 8), h2: hostPolicy(2, true, 8), h3: hostPolicy(3, true, 8) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.331.0", ...pool } },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1", "h2", "h3"] }],
  });
}

function lane(n: number, p: Partial<LaneFixture> = {}): LaneFixture {
  return { laneId: `${P}-l${n}`, scope: S, pool: P, hostId: `h${(n % 3) + 1}`, hostLane: { runnerVersion: "2.330.0" }, ...p };
}

function release(latest: string): RunnerReleaseObservation {
  return {
    status: "ok",
    latest,
    downloads: [{ os: "linux", architecture: "x64", url: `https://github.com/actions/runner/releases/download/v${latest}/actions-runner-linux-x64-${latest}.tar.gz`, filename: `actions-runner-linux-x64-${latest}.tar.gz`, sha256: "c".repeat(64) }],
  };
}

function run(pol: Policy, lanes: LaneFixture[], extras: FleetExtras = {}): Plan {
  const i = buildInputs(pol, lanes, { nowMs: NOW, ...extras });
  return plan(i.policy, i.observed, i.records, { nowMs: NOW });
}

const ofKind = <K extends PlanActionKind>(p: Plan, k: K): Extract<Action, { kind: K }>[] =>
  p.actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === k);
const upgrades = (p: Plan): UpgradeAction[] => ofKind(p, "upgrade");
const codes = (p: Plan): string[] => p.warnings.map((w) => w.code);

describe("plan: rolling runner upgrades", () => {
  it("plans nothing when every lane runs the wanted version", () => {
    const p = run(policy(3, { runnerVersion: "2.330.0" }), [lane(1), lane(2), lane(3)]);
    expect(p.actions).toEqual([]);
    expect(p.versionDrift).toEqual([]);
  });

  it("upgrades at most maxUnavailable lanes of a group (default 1) and shows the others waiting", () => {
    const p = run(policy(3), [lane(1), lane(2), lane(3)]);
    expect(upgrades(p).map((a) => a.laneId)).toEqual([`${P}-l1`]);
    const u = upgrades(p)[0]!;
    expect(u.from).toEqual({ runnerVersion: "2.330.0", image: "" });
    expect(u.to).toEqual({ runnerVersion: "2.331.0", image: "" });
    expect(u.reason.code).toBe("VERSION_DRIFT");
    expect(u.steps).toEqual(["set-draining-labels", "send-drain", "wait-idle", "send-upgrade", "verify-upgraded", "restore-labels"]);
    expect(u.labels).toEqual(["lk-managed", `lk-lane-${P}-l1`, "lk-host-h2", `lk-pool-${P}`, "linux", "x64"]);
    expect(p.versionDrift.map((d) => [d.laneId, d.have, d.want, d.status])).toEqual([
      [`${P}-l1`, "2.330.0", "2.331.0", "upgrade"],
      [`${P}-l2`, "2.330.0", "2.331.0", "waiting"],
      [`${P}-l3`, "2.330.0", "2.331.0", "waiting"],
    ]);
    expect(codes(p)).toContain("UPGRADE_WAITING");
    expect(upgrades(run(policy(3, { upgrade: { maxUnavailable: 2 } }), [lane(1), lane(2), lane(3)]))).toHaveLength(2);
  });

  it("counts lanes already out of service against maxUnavailable", () => {
    const lanes = [lane(1), lane(2, { hostLane: { runnerVersion: "2.330.0", state: LaneState.LANE_STATE_STOPPED } }), lane(3)];
    // The stopped lane is restarted (a repair), not upgraded; it takes one of the two slots.
    const p = run(policy(3, { upgrade: { maxUnavailable: 2 } }), lanes);
    expect(upgrades(p).map((a) => a.laneId)).toEqual([`${P}-l1`]);
    expect(ofKind(p, "restart").map((a) => a.laneId)).toEqual([`${P}-l2`]);
    expect(upgrades(run(policy(3), lanes))).toEqual([]);
  });

  it("takes idle lanes first; a busy lane is drained and waits for its job, never swapped under it", () => {
    const busy = { hostLane: { runnerVersion: "2.330.0", jobRunning: true }, registration: { busy: true } } as const;
    const p = run(policy(3), [lane(1, busy), lane(2, busy), lane(3)]);
    expect(upgrades(p).map((a) => a.laneId)).toEqual([`${P}-l3`]);
    const q = run(policy(2), [lane(1, busy), lane(2, busy)]);
    const u = upgrades(q)[0]!;
    expect(u.laneId).toBe(`${P}-l1`);
    expect(u.steps.indexOf("wait-idle")).toBeLessThan(u.steps.indexOf("send-upgrade"));
    expect(u.steps.indexOf("set-draining-labels")).toBeLessThan(u.steps.indexOf("wait-idle"));
    expect(u.guards).toContainEqual({ kind: "no-job-evidence", hostId: "h2", laneId: `${P}-l1`, at: "send-upgrade" });
  });

  it("leaves lanes of unknown version, held lanes and lanes the group pass removes alone", () => {
    const p = run(policy(3, { upgrade: { maxUnavailable: 5 } }), [
      lane(1, { hostLane: { runnerVersion: "" } }),
      lane(2, { hostLane: { runnerVersion: "2.330.0", held: true } }),
      lane(3),
      lane(4),
    ]);
    // One lane is excess and removed; of the rest, only lanes whose version is known and that are not held move.
    const removed = ofKind(p, "remove").map((a) => a.laneId);
    expect(removed).toHaveLength(1);
    expect(upgrades(p).map((a) => a.laneId)).toEqual([`${P}-l3`, `${P}-l4`].filter((l) => !removed.includes(l)));
  });

  it("follows latest: GitHub's current release is what lanes are created with and upgraded to", () => {
    const pol = policy(3, { runnerVersion: "latest" });
    const p = run(pol, [lane(1, { hostLane: { runnerVersion: "2.331.0" } }), lane(2, { hostLane: { runnerVersion: "2.332.0" } })], { runnerReleases: release("2.332.0") });
    expect(upgrades(p).map((a) => [a.laneId, a.to.runnerVersion])).toEqual([[`${P}-l1`, "2.332.0"]]);
    expect(ofKind(p, "create").map((c) => c.spec.runnerVersion)).toEqual(["2.332.0"]);
    expect(upgrades(p)[0]!.evidence).toContainEqual({ source: "policy", path: `pools.${P}.runnerVersion`, value: "latest = 2.332.0" });
  });

  it("creates and upgrades nothing in a latest pool while GitHub's release is unknown, and says so", () => {
    const pol = policy(3, { runnerVersion: "latest" });
    for (const rel of [undefined, { status: "error", code: "GITHUB_API", message: "500" } as const]) {
      const p = run(pol, [lane(1)], rel === undefined ? {} : { runnerReleases: rel });
      expect(ofKind(p, "create")).toEqual([]);
      expect(upgrades(p)).toEqual([]);
      expect(codes(p)).toContain("RUNNER_VERSION_UNRESOLVED");
    }
  });

  it("warns when a pinned version lags GitHub's release by more than maxVersionLag minors", () => {
    const lanes = [lane(1, { hostLane: { runnerVersion: "2.331.0" } })];
    expect(codes(run(policy(1), lanes, { runnerReleases: release("2.333.0") }))).toContain("RUNNER_VERSION_LAG");
    expect(codes(run(policy(1), lanes, { runnerReleases: release("2.332.0") }))).not.toContain("RUNNER_VERSION_LAG");
    expect(codes(run(policy(1, { upgrade: { maxVersionLag: 2 } }), lanes, { runnerReleases: release("2.333.0") }))).not.toContain("RUNNER_VERSION_LAG");
    expect(codes(run(policy(1), lanes, { runnerReleases: release("3.0.0") }))).toContain("RUNNER_VERSION_LAG");
  });

  it("halts the group's rollout while a lane carries a failed upgrade's needs-attention", () => {
    const failed = lane(1, { record: { state: "needs-attention", attention: { code: "UPGRADE_ROLLED_BACK", message: "rolled back" } } });
    const p = run(policy(3, { upgrade: { maxUnavailable: 3 } }), [failed, lane(2), lane(3)]);
    expect(upgrades(p)).toEqual([]);
    expect(codes(p)).toContain("UPGRADE_HALTED");
    expect(p.versionDrift.map((d) => d.status)).toEqual(["halted", "halted", "halted"]);
  });

  it("upgrades ephemeral lanes only while they wait unarmed between jobs, instead of arming them", () => {
    const eph = (n: number, state: LaneState): LaneFixture =>
      lane(n, { registration: state === LaneState.LANE_STATE_IDLE_UNARMED ? false : {}, hostLane: { runnerVersion: "2.330.0", mode: LaneMode.LANE_MODE_EPHEMERAL, state } });
    const p = run(policy(3, { mode: "ephemeral", upgrade: { maxUnavailable: 3 } }), [
      eph(1, LaneState.LANE_STATE_IDLE_UNARMED),
      eph(2, LaneState.LANE_STATE_RUNNING),
      eph(3, LaneState.LANE_STATE_IDLE_UNARMED),
    ]);
    expect(upgrades(p).map((a) => a.laneId)).toEqual([`${P}-l1`, `${P}-l3`]);
    expect(upgrades(p)[0]!.steps).toEqual(UPGRADE_EPHEMERAL_STEPS);
    expect(ofKind(p, "arm")).toEqual([]);
    expect(p.versionDrift.find((d) => d.laneId === `${P}-l2`)?.status).toBe("waiting");
  });

  it("rolls container pools by image digest", () => {
    const pol = policy(2, { backend: "container", runnerVersion: undefined, image: IMG_NEW });
    const c = (n: number): LaneFixture => lane(n, { hostLane: { runnerVersion: "", image: IMG_OLD } });
    const p = run(pol, [c(1), c(2)]);
    expect(upgrades(p).map((a) => [a.reason.code, a.from.image, a.to.image])).toEqual([["IMAGE_DRIFT", IMG_OLD, IMG_NEW]]);
    expect(p.versionDrift.map((d) => d.what)).toEqual(["image", "image"]);
  });
});

describe("runner versions", () => {
  it("compares and measures lag in minor releases", () => {
    expect(compareRunnerVersions("2.330.0", "2.331.0")).toBeLessThan(0);
    expect(compareRunnerVersions("2.331.1", "2.331.0")).toBeGreaterThan(0);
    expect(compareRunnerVersions("latest", "2.331.0")).toBeUndefined();
    expect(minorLag("2.330.0", "2.333.0")).toBe(3);
    expect(minorLag("2.333.0", "2.330.0")).toBe(0);
    expect(minorLag("1.9.0", "2.0.0")).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("plan: upgrade properties over random groups", () => {
  const laneArb = fc.record({
    version: fc.constantFrom("2.330.0", "2.331.0", ""),
    busy: fc.boolean(),
    state: fc.constantFrom(LaneState.LANE_STATE_RUNNING, LaneState.LANE_STATE_RUNNING, LaneState.LANE_STATE_STOPPED, LaneState.LANE_STATE_FAILED),
    draining: fc.boolean(),
    held: fc.boolean(),
    record: fc.constantFrom("active", "active", "active", "draining", "needs-attention"),
    online: fc.boolean(),
  });

  it("never more than maxUnavailable out of service, only drift lanes, never a swap before the drain's wait", () => {
    fc.assert(
      fc.property(fc.array(laneArb, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 4 }), (specs, maxUnavailable) => {
        const fixtures = specs.map((s, i) =>
          lane(i + 1, {
            hostLane: { runnerVersion: s.version, jobRunning: s.busy, state: s.state, draining: s.draining, held: s.held },
            registration: { busy: s.busy, status: s.online ? "online" : "offline" },
            record: s.record === "needs-attention" ? { state: "needs-attention", attention: { code: "DRAIN_DEADLINE", message: "x" } } : { state: s.record },
          }),
        );
        const p = run(policy(specs.length, { upgrade: { maxUnavailable } }), fixtures);
        const ups = upgrades(p);
        const byLane = new Map(fixtures.map((f, i) => [f.laneId, specs[i]!]));
        // Out of service before this plan: anything not active, running, online, undrained and unheld.
        const out = specs.filter((s) => s.record !== "active" || s.state !== LaneState.LANE_STATE_RUNNING || !s.online || s.draining || s.held).length;
        const otherwiseTargeted = p.actions.filter((a) => a.kind !== "upgrade" && a.kind !== "update-record").length;
        expect(ups.length).toBeLessThanOrEqual(Math.max(0, maxUnavailable - out));
        expect(ups.length + out).toBeLessThanOrEqual(Math.max(maxUnavailable, out) + otherwiseTargeted);
        for (const u of ups) {
          const s = byLane.get(u.laneId)!;
          expect(s.version).toBe("2.330.0");
          expect(s.record).toBe("active");
          expect(s.state).toBe(LaneState.LANE_STATE_RUNNING);
          expect(u.steps.indexOf("send-drain")).toBeLessThan(u.steps.indexOf("wait-idle"));
          expect(u.steps.indexOf("wait-idle")).toBeLessThan(u.steps.indexOf("send-upgrade"));
          expect(u.guards.some((g) => g.kind === "no-job-evidence" && g.at === "send-upgrade")).toBe(true);
          expect(p.actions.filter((a) => a.laneId === u.laneId)).toHaveLength(1);
        }
      }),
      { numRuns: 300 },
    );
  });
});
