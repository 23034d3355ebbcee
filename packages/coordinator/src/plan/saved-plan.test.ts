import { readFileSync } from "node:fs";
import { makePolicy, hostPolicy, buildInputs, type LaneFixture } from "@lanekeeper/testing";
import type { Policy } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { plan } from "./planner.js";
import {
  checkSavedPlanCurrent,
  formatSavedPlan,
  makeSavedPlan,
  parseSavedPlan,
  policyDigest,
  savedActions,
  savedPlanJsonSchema,
  SavedPlanError,
  type SavedPlan,
} from "./saved-plan.js";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "linux-x64";

function policy(count: number): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 6), h2: hostPolicy(2, true, 6) },
    scopes: { [S]: { optIn: true } },
    pools: { [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1", "h2"] }],
  });
}

const lane = (n: number, hostId: string, p: Partial<LaneFixture> = {}): LaneFixture => ({ laneId: `${P}-l${n}`, scope: S, pool: P, hostId, ...p });

/** Plans with most action kinds: creates, a relabel, a restart, an orphan mark, scale-down. */
function samplePlans(): { policy: Policy; actions: ReturnType<typeof plan>["actions"] }[] {
  const out = [];
  const grow = policy(5);
  const i = buildInputs(grow, [
    lane(1, "h1", { registration: { labels: ["lk-managed", "lk-lane-linux-x64-l1", "lk-host-h1", "lk-pool-linux-x64", "drift"] } }),
    lane(2, "h2", { hostLane: { state: 3 } }),
    lane(3, "h1", { record: false, hostLane: false }),
  ], { nowMs: NOW });
  out.push({ policy: grow, actions: plan(i.policy, i.observed, i.records, { nowMs: NOW }).actions });
  const shrink = policy(0);
  const j = buildInputs(shrink, [lane(4, "h1"), lane(5, "h2")], { nowMs: NOW });
  out.push({ policy: shrink, actions: plan(j.policy, j.observed, j.records, { nowMs: NOW }).actions });
  // An upgrade inside its pool's window: the window's guard and evidence.
  const base = policy(1);
  const windowed = makePolicy({
    ...base,
    pools: { [P]: { ...base.pools[P]!, upgrade: { window: { name: "hourly", cron: "0 * * * *", duration: "2h", timezone: "Europe/Berlin" } } } },
  });
  const k = buildInputs(windowed, [lane(6, "h1", { hostLane: { runnerVersion: "2.329.0" } })], { nowMs: NOW });
  out.push({ policy: windowed, actions: plan(k.policy, k.observed, k.records, { nowMs: NOW }).actions });
  return out;
}

describe("saved plans: (de)serialisation", () => {
  it("round-trips every action exactly (guards, evidence, steps, dependencies), through the zod schema", () => {
    const kinds = new Set<string>();
    for (const s of samplePlans()) {
      const saved = makeSavedPlan({ planId: "plan-1", actions: s.actions, policy: s.policy, policyPath: "/srv/lanekeeper.yaml", nowMs: NOW });
      const text = formatSavedPlan(saved);
      const back = parseSavedPlan(text, "plan.json");
      expect(savedActions(back)).toEqual(JSON.parse(JSON.stringify(s.actions)));
      expect(back).toMatchObject({ format: "lanekeeper.saved-plan", version: 1, planId: "plan-1", createdAtMs: NOW, expiresAtMs: NOW + 3_600_000 });
      expect(back.policy).toEqual({ path: "/srv/lanekeeper.yaml", digest: policyDigest(s.policy) });
      for (const a of s.actions) kinds.add(a.kind);
      for (const a of back.actions) expect(a.guards.length + a.evidence.length).toBeGreaterThan(0);
    }
    expect([...kinds].sort()).toEqual(expect.arrayContaining(["create", "mark-orphan", "relabel", "remove", "upgrade"]));
  });

  it("refuses what is not a saved plan, another version, unknown keys, a bad guard and duplicate actions (PLAN_INVALID)", () => {
    const s = samplePlans()[0]!;
    const good = JSON.parse(formatSavedPlan(makeSavedPlan({ planId: "p", actions: s.actions, policy: s.policy, policyPath: "/p.yaml", nowMs: NOW }))) as SavedPlan;
    const reason = (text: string): string => {
      try {
        parseSavedPlan(text, "plan.json");
      } catch (err) {
        expect(err).toBeInstanceOf(SavedPlanError);
        expect((err as SavedPlanError).code).toBe("PLAN_INVALID");
        expect((err as SavedPlanError).hint).toContain("lanekeeper plan --out plan.json");
        return (err as SavedPlanError).reason;
      }
      return "accepted";
    };
    expect(reason(JSON.stringify(good))).toBe("accepted");
    expect(reason("{not json")).toBe("MALFORMED");
    expect(reason(JSON.stringify({ ...good, version: 2 }))).toBe("VERSION");
    expect(reason(JSON.stringify({ ...good, extra: 1 }))).toBe("MALFORMED");
    expect(reason(JSON.stringify({ ...good, format: "terraform" }))).toBe("MALFORMED");
    const badGuard = structuredClone(good);
    (badGuard.actions[0]!.guards as unknown[]).push({ kind: "always-true" });
    expect(reason(JSON.stringify(badGuard))).toBe("MALFORMED");
    const dup = structuredClone(good);
    dup.actions.push(dup.actions[0]!);
    expect(reason(JSON.stringify(dup))).toBe("MALFORMED");
  });

  it("is stale once expired or when the policy changed (comments and key order do not count)", () => {
    const s = samplePlans()[0]!;
    const saved = makeSavedPlan({ planId: "p", actions: s.actions, policy: s.policy, policyPath: "/p.yaml", nowMs: NOW, ttlMs: 60_000 });
    expect(() => checkSavedPlanCurrent(saved, { policy: structuredClone(s.policy), nowMs: NOW + 59_999, path: "plan.json" })).not.toThrow();
    const stale = (policyNow: Policy, nowMs: number): string => {
      try {
        checkSavedPlanCurrent(saved, { policy: policyNow, nowMs, path: "plan.json" });
      } catch (err) {
        expect((err as SavedPlanError).code).toBe("PLAN_STALE");
        return (err as SavedPlanError).reason;
      }
      return "current";
    };
    expect(stale(s.policy, NOW + 60_000)).toBe("EXPIRED");
    expect(stale(policy(4), NOW)).toBe("POLICY_CHANGED");
  });

  it("publishes a JSON Schema of the file", () => {
    const schema = savedPlanJsonSchema();
    expect(schema).toMatchObject({ type: "object", additionalProperties: false });
    expect(Object.keys(schema.properties as object)).toEqual(expect.arrayContaining(["format", "version", "actions", "policy", "expiresAtMs"]));
    const committed = readFileSync(new URL("../../../../schemas/saved-plan.schema.json", import.meta.url), "utf8");
    expect(committed, "run npm run build && npm run schemas").toBe(`${JSON.stringify(schema, null, 2)}\n`);
  });
});
