/**
 * Property test of the planner over random observed states, driven by fast-check: a failure is shrunk to a
 * smaller world and reported with its seed and path; replay it with
 * `LK_FC_SEED=<seed> LK_FC_PATH=<path> npx vitest run packages/coordinator/src/plan/planner.property.test.ts`.
 * The properties are checked against the generated ground truth, not against the classifier's view.
 */
import fc from "fast-check";
import {
  canonicalLabels,
  Health,
  isReservedLabel,
  LaneState,
  validateLaneId,
  type Allowlist,
  type Policy,
} from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import type { HostInventory } from "../observe/inventory-view.js";
import type { LaneRecord, LaneRecordState, OrphanKind } from "../observe/lane-record.js";
import type { ScopeObservation } from "../observe/scope-observation.js";
import type { Action } from "./action.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";
import {
  buildInputs,
  githubRunner,
  hostPolicy,
  makePolicy,
  type LaneFixture,
  type PlanInputs,
} from "@lanekeeper/testing";

const NOW = 1_800_000_000_000;
const GRACE = 300_000;
const MAX_REMOVALS = 2;
const MAX_CLEANUPS = 3;
const MAX_CREATES = 6;
/** Worlds per run; `LK_FC_RUNS` raises it for a longer hunt. */
const RUNS = Number(process.env.LK_FC_RUNS ?? 600);
/** Enough choices for the largest world (14 lanes); choices past the end of the tape read as 0. */
const TAPE_LENGTH = 512;

interface World {
  readonly inputs: PlanInputs;
  readonly fixtures: readonly LaneFixture[];
  /** Runner ids without any lk- label (unmanaged by definition). */
  readonly unmanagedIds: ReadonlySet<number>;
  /** Runner ids of another coordinator's runners (complete identity, foreign host, unknown lane). */
  readonly foreignIds: ReadonlySet<number>;
  readonly foreignLaneIds: ReadonlySet<string>;
}

const STATES: LaneRecordState[] = ["creating", "active", "active", "active", "draining", "removing", "needs-attention", "orphaned"];
const KINDS: OrphanKind[] = ["registration-without-lane", "lane-without-registration", "record-without-lane"];
const LANE_STATES = [LaneState.LANE_STATE_RUNNING, LaneState.LANE_STATE_RUNNING, LaneState.LANE_STATE_IDLE_UNARMED, LaneState.LANE_STATE_STOPPED, LaneState.LANE_STATE_FAILED, LaneState.LANE_STATE_CREATING, LaneState.LANE_STATE_NEEDS_ATTENTION];

/**
 * The world builder's random choices, read from a tape of integers that fast-check generates and shrinks.
 * Shrinking moves values towards 0 and shortens the tape, and 0 decodes to the simplest choice (the minimum,
 * the first element, "no"), so a shrunk counterexample is a smaller, plainer world.
 */
class ChoiceTape {
  private i = 0;

  constructor(private readonly tape: readonly number[]) {}

  /** Uniform in [0, 1) while the tape lasts, then 0. */
  private next(): number {
    return (this.tape[this.i++] ?? 0) / 2 ** 31;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`; a 0 on the tape is false. */
  chance(p: number): boolean {
    return this.next() >= 1 - p;
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    const v = list[Math.floor(this.next() * list.length)];
    if (v === undefined) throw new Error("pick from an empty list");
    return v;
  }
}

/**
 * Unbiased and full length, so worlds are spread like the old uniform generator's rather than crowded at the
 * extremes or cut short; shrinking still simplifies them by moving choices to 0.
 */
const tapes = fc.noBias(fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: TAPE_LENGTH, maxLength: TAPE_LENGTH }));

function subset<T>(rnd: ChoiceTape, list: readonly T[], p: number): T[] {
  return list.filter(() => rnd.chance(p));
}

function randomWorld(tape: readonly number[]): World {
  const rnd = new ChoiceTape(tape);
  const hostIds = Array.from({ length: rnd.int(1, 5) }, (_, i) => `h${i}`);
  const scopes = Array.from({ length: rnd.int(1, 3) }, (_, i) => `acme/r${i}`);
  const pools = ["p0", "p1"];
  const pol: Policy = makePolicy({
    hosts: Object.fromEntries(hostIds.map((h, i) => [h, hostPolicy(i, rnd.chance(0.8), rnd.int(0, 6))])),
    scopes: Object.fromEntries(scopes.map((s) => [s, { optIn: rnd.chance(0.8) }])),
    pools: {
      p0: { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" },
      p1: { labels: ["gpu", "x64"], backend: "container", mode: "ephemeral", image: `img@sha256:${"a".repeat(64)}` },
    },
    lanes: [],
  });
  for (const scope of scopes) {
    for (const pool of pools) {
      if (!rnd.chance(0.6)) continue;
      const hosts = subset(rnd, hostIds, 0.7);
      pol.lanes.push({ scope, pool, count: rnd.int(0, 5), hosts: hosts.length > 0 ? hosts : [rnd.pick(hostIds)] });
    }
  }

  const fixtures: LaneFixture[] = [];
  const nLanes = rnd.int(0, 14);
  for (let n = 0; n < nLanes; n++) {
    const scope = rnd.chance(0.9) ? rnd.pick(scopes) : "other/repo";
    const pool = rnd.chance(0.95) ? rnd.pick(pools) : "p9";
    const hostId = rnd.chance(0.93) ? rnd.pick(hostIds) : "ghost";
    const laneId = `${pool}-${n.toString(16).padStart(6, "0")}`;
    const capability = pool === "p1" ? ["gpu", "x64"] : pool === "p0" ? ["linux"] : [];
    const identity = canonicalLabels({ laneId, hostId, pool, capabilityLabels: [] });
    const canonical = canonicalLabels({ laneId, hostId, pool, capabilityLabels: capability });
    let record: Partial<LaneRecord> | false = false;
    if (rnd.chance(0.8)) {
      const state = rnd.pick(STATES);
      const kind = rnd.pick(KINDS);
      record = {
        state,
        createdAtMs: NOW - rnd.int(0, 3_600_000),
        ...(rnd.chance(0.1) ? { runnerId: 424242 } : {}),
        ...(state === "draining" ? { drainReason: rnd.pick(["scale-down", "move", "operator"] as const) } : {}),
        ...(state === "orphaned" && rnd.chance(0.9)
          ? { orphan: { kind, markedAtMs: NOW - rnd.int(0, 2 * GRACE), ...(rnd.chance(0.5) ? { previousState: "active" as const } : {}) } }
          : {}),
      };
    }
    const labelChoice = rnd.int(0, 9);
    const labels =
      labelChoice <= 5 ? canonical : labelChoice === 6 ? [...identity, "drifted"] : labelChoice === 7 ? [...identity, "lk-draining"] : labelChoice === 8 ? ["lk-managed", `lk-lane-${laneId}`] : ["linux"];
    fixtures.push({
      laneId,
      scope,
      pool,
      hostId,
      record,
      registration: rnd.chance(0.75) ? { labels, busy: rnd.chance(0.3), status: rnd.chance(0.85) ? "online" : "offline" } : false,
      hostLane: rnd.chance(0.75)
        ? {
            jobRunning: rnd.chance(0.3),
            state: rnd.pick(LANE_STATES),
            health: rnd.chance(0.1) ? Health.HEALTH_CRASH_LOOP : Health.HEALTH_HEALTHY,
            held: rnd.chance(0.1),
            draining: rnd.chance(0.15),
            ...(rnd.chance(0.1) ? { runnerId: rnd.int(1, 9) } : {}),
            ...(rnd.chance(0.05) ? { scope: "acme/elsewhere" } : {}),
          }
        : false,
    });
  }

  // Other people's runners, in observed scopes: unmanaged ones and another coordinator's.
  const runners: { scope: string; runner: ReturnType<typeof githubRunner> }[] = [];
  const unmanagedIds = new Set<number>();
  const foreignIds = new Set<number>();
  const foreignLaneIds = new Set<string>();
  let id = 90_000;
  for (let i = rnd.int(0, 4); i > 0; i--) {
    const runner = githubRunner(id, rnd.pick([["self-hosted", "linux"], ["linux", "x64", "gpu"], []]), { busy: rnd.chance(0.5) });
    unmanagedIds.add(id++);
    runners.push({ scope: rnd.pick(scopes), runner });
  }
  for (let i = rnd.int(0, 3); i > 0; i--) {
    const laneId = `zz-${i}`;
    foreignLaneIds.add(laneId);
    const runner = githubRunner(id, ["lk-managed", `lk-lane-${laneId}`, "lk-host-foreign-h", "lk-pool-p0", "linux"], { busy: rnd.chance(0.5) });
    foreignIds.add(id++);
    runners.push({ scope: rnd.pick(scopes), runner });
  }

  const known = subset(rnd, hostIds, 0.75);
  const inventory: Record<string, Partial<HostInventory>> = {};
  for (const h of known) {
    const allowlist: Allowlist | undefined = rnd.chance(0.3)
      ? {
          scopes: subset(rnd, scopes, 0.7),
          pools: subset(rnd, pools, 0.7),
          backends: subset(rnd, ["systemd", "container"], 0.7),
          images: subset(rnd, [`img@sha256:${"a".repeat(64)}`], 0.5),
          actions: subset(rnd, ["create", "drain", "undrain", "restart", "remove", "arm"], 0.8),
          maxLanes: rnd.int(0, 6),
        }
      : undefined;
    inventory[h] = {
      controlEnabled: rnd.chance(0.85),
      allowlist,
      ...(rnd.chance(0.1) ? { receivedAtMs: NOW - 3_600_000 } : {}),
    };
  }
  const scopeOverrides: Record<string, ScopeObservation> = {};
  for (const s of scopes) {
    if (rnd.chance(0.1)) scopeOverrides[s] = { scope: s, status: "unavailable", code: "GITHUB_API", message: "injected" };
  }
  const inputs = buildInputs(pol, fixtures, { nowMs: NOW, runners, knownHosts: known, inventory, scopes: scopeOverrides });
  // Registrations whose fixture stripped every lk- label are unmanaged too.
  for (const obs of inputs.observed.scopes.values()) {
    if (obs.status !== "ok") continue;
    for (const r of obs.runners) if (!r.labels.some((l) => isReservedLabel(l.name))) unmanagedIds.add(r.id);
  }
  // Incomplete scope listings, after the fact (the runners are still listed; absence is no longer evidence).
  for (const s of scopes) {
    const obs = inputs.observed.scopes.get(s);
    if (obs?.status === "ok" && rnd.chance(0.1)) (inputs.observed.scopes as Map<string, ScopeObservation>).set(s, { ...obs, complete: false });
  }
  return { inputs, fixtures, unmanagedIds, foreignIds, foreignLaneIds };
}

function runnerIdsOf(a: Action): number[] {
  const ids: number[] = [];
  if ("runnerId" in a && typeof a.runnerId === "number") ids.push(a.runnerId);
  if (a.kind === "mark-orphan" && a.mark.runnerId !== undefined) ids.push(a.mark.runnerId);
  for (const g of a.guards) if ("runnerId" in g && typeof g.runnerId === "number") ids.push(g.runnerId);
  return ids;
}

function makePlan(w: World): Plan {
  const i = w.inputs;
  return plan(i.policy, i.observed, i.records, {
    nowMs: NOW,
    maxRemovals: MAX_REMOVALS,
    maxOrphanCleanups: MAX_CLEANUPS,
    maxCreates: MAX_CREATES,
    orphanGraceMs: GRACE,
  });
}

function check(w: World, p: Plan): void {
  const { policy, observed, records } = w.inputs;
  const fixture = new Map(w.fixtures.map((f) => [f.laneId, f]));
  const fresh = (h: string): HostInventory | undefined => {
    const inv = observed.inventory.hosts.get(h);
    return inv !== undefined && NOW - inv.receivedAtMs <= 60_000 ? inv : undefined;
  };
  const registrationOf = (scope: string, laneId: string): { busy: boolean } | undefined => {
    const obs = observed.scopes.get(scope);
    if (obs?.status !== "ok") return undefined;
    return obs.runners.find((r) => r.labels.some((l) => l.name === `lk-lane-${laneId}`) && r.labels.some((l) => l.name === "lk-managed"));
  };
  // fast-check reports the seed, the path and the shrunk tape; this names the world's size beside each failure.
  const ctx = `world of ${w.fixtures.length} lane(s), ${Object.keys(policy.hosts).length} host(s)`;

  // Determinism.
  expect(JSON.stringify(makePlan(w)), ctx).toBe(JSON.stringify(p));
  // Unique ids.
  expect(new Set(p.actions.map((a) => a.id)).size, ctx).toBe(p.actions.length);

  let removals = 0;
  let cleanups = 0;
  const createsOn = new Map<string, number>();
  for (const a of p.actions) {
    // 1. Never an unmanaged or foreign runner, never a foreign lane.
    for (const id of runnerIdsOf(a)) {
      expect(w.unmanagedIds.has(id), `${ctx}: ${a.id} targets unmanaged runner ${id}`).toBe(false);
      expect(w.foreignIds.has(id), `${ctx}: ${a.id} targets foreign runner ${id}`).toBe(false);
    }
    expect(w.foreignLaneIds.has(a.laneId), `${ctx}: ${a.id} targets a foreign lane`).toBe(false);

    // 2. Opt-in on both sides of the policy, and no known control-disabled agent, for anything that acts on a host or GitHub.
    const storeOnly = a.kind === "update-record" || a.kind === "forget-record" || (a.kind === "cleanup-orphan" && a.orphanKind === "record-without-lane");
    if (!storeOnly) {
      expect(policy.scopes[a.scope]?.optIn, `${ctx}: ${a.id} in a scope without opt-in`).toBe(true);
      expect(policy.hosts[a.hostId]?.optIn, `${ctx}: ${a.id} on a host without opt-in`).toBe(true);
      expect(fresh(a.hostId)?.controlEnabled ?? true, `${ctx}: ${a.id} on a control-disabled host`).toBe(true);
      expect(observed.scopes.get(a.scope)?.status, `${ctx}: ${a.id} in an unobserved scope`).toBe("ok");
    }

    // 2b. Every intent action the plan will send is one the agent's reported allowlist permits.
    const allow = fresh(a.hostId)?.allowlist;
    if (allow !== undefined) {
      for (const g of a.guards) {
        if (g.kind !== "host-allows") continue;
        const ok =
          allow.actions.includes(g.action) &&
          allow.scopes.includes(g.scope) &&
          allow.pools.includes(g.pool) &&
          allow.backends.includes(g.backend) &&
          (g.image === undefined || allow.images.includes(g.image));
        expect(ok, `${ctx}: ${a.id} needs ${g.action}, which the allowlist of ${a.hostId} refuses`).toBe(true);
      }
    }

    // 3. Scale-down never picks a busy lane or one with job evidence.
    // A resumed removal whose host already removed the lane stops nothing: it must then prove the lane is gone there.
    if (a.kind === "remove" && !a.steps.includes("send-remove")) {
      expect(a.reason.code, ctx).toBe("RESUME_REMOVE");
      expect(a.guards.some((g) => g.kind === "lane-absent-on-host"), ctx).toBe(true);
    } else if (a.kind === "remove") {
      expect(a.steps.indexOf("wait-idle"), ctx).toBeLessThan(a.steps.indexOf("send-remove"));
      expect(a.guards.some((g) => g.kind === "no-job-evidence" && g.at === "send-remove"), ctx).toBe(true);
      if (a.reason.code !== "RESUME_REMOVE") {
        removals++;
        const f = fixture.get(a.laneId);
        const reg = registrationOf(a.scope, a.laneId);
        const hostLane = fresh(a.hostId)?.lanes.find((l) => l.laneId === a.laneId);
        expect(f, ctx).toBeDefined();
        expect(hostLane?.jobRunning, `${ctx}: ${a.id} removes a lane with job evidence (or unknown)`).toBe(false);
        // GitHub must say not busy; only an ephemeral lane between jobs may have no registration at all.
        if (reg === undefined) expect(hostLane?.state, `${ctx}: ${a.id} removes a lane GitHub does not show`).toBe(LaneState.LANE_STATE_IDLE_UNARMED);
        else expect(reg.busy, `${ctx}: ${a.id} removes a lane GitHub shows busy`).toBe(false);
      }
    }
    if (a.kind === "drain") removals++;
    if (a.kind === "cleanup-orphan") {
      const r = records.find((x) => x.laneId === a.laneId);
      expect(r?.state, ctx).toBe("orphaned");
      expect((r?.orphan?.markedAtMs ?? NOW) + GRACE, `${ctx}: ${a.id} cleaned up within the grace period`).toBeLessThanOrEqual(NOW);
      if (a.orphanKind !== "record-without-lane") cleanups++;
      if (a.orphanKind === "registration-without-lane") {
        expect(registrationOf(a.scope, a.laneId)?.busy, `${ctx}: ${a.id} deletes a busy registration`).toBe(false);
      }
      if (a.orphanKind === "lane-without-registration") {
        expect(fresh(a.hostId)?.lanes.find((l) => l.laneId === a.laneId)?.jobRunning, `${ctx}: ${a.id}`).toBe(false);
      }
    }
    if (a.kind === "create") {
      expect(validateLaneId(a.laneId), ctx).toBe(a.laneId);
      expect(fixture.has(a.laneId), `${ctx}: ${a.id} reuses an existing lane id`).toBe(false);
      createsOn.set(a.hostId, (createsOn.get(a.hostId) ?? 0) + 1);
      const lanePolicy = policy.lanes.find((l) => l.scope === a.scope && l.pool === a.pool);
      expect(lanePolicy?.hosts, ctx).toContain(a.hostId);
    }
  }
  // 4. Budgets.
  expect(removals, `${ctx}: removals`).toBeLessThanOrEqual(MAX_REMOVALS);
  expect(cleanups, `${ctx}: orphan cleanups`).toBeLessThanOrEqual(MAX_CLEANUPS);
  expect(p.counts.create, `${ctx}: creates`).toBeLessThanOrEqual(MAX_CREATES);
  // 5. Capacity: new lanes only where policy capacity (and a reported maxLanes) leave room.
  for (const [h, n] of createsOn) {
    const existing = new Set<string>();
    for (const r of records) if (r.hostId === h && r.state !== "orphaned") existing.add(r.laneId);
    for (const l of fresh(h)?.lanes ?? []) existing.add(l.laneId);
    const allow = fresh(h)?.allowlist;
    const cap = Math.min(policy.hosts[h]?.capacity ?? 0, allow?.maxLanes ?? Number.MAX_SAFE_INTEGER);
    expect(existing.size + n, `${ctx}: host ${h} over capacity`).toBeLessThanOrEqual(cap);
  }
}

/** Kinds of action seen in plans of `n` worlds drawn with a fixed seed (deterministic, so the check cannot flake). */
function kindsReached(n: number, seed: number): { kinds: string[]; actions: number } {
  const seen = new Set<string>();
  let actions = 0;
  for (const tape of fc.sample(tapes, { numRuns: n, seed })) {
    const p = makePlan(randomWorld(tape));
    actions += p.actions.length;
    for (const a of p.actions) seen.add(a.kind);
  }
  return { kinds: [...seen].sort(), actions };
}

describe("plan (property)", () => {
  it(`holds the safety properties over ${RUNS} random observed states`, () => {
    const seed = process.env.LK_FC_SEED === undefined ? undefined : Number(process.env.LK_FC_SEED);
    fc.assert(
      fc.property(tapes, (tape) => {
        const w = randomWorld(tape);
        check(w, makePlan(w));
      }),
      {
        numRuns: RUNS,
        ...(seed === undefined ? {} : { seed }),
        ...(process.env.LK_FC_PATH === undefined ? {} : { path: process.env.LK_FC_PATH }),
      },
    );
  });

  it("draws worlds that reach every kind of action (or the properties above prove little)", () => {
    const { kinds, actions } = kindsReached(RUNS, 1);
    expect(kinds).toEqual(
      ["arm", "cleanup-orphan", "create", "drain", "forget-record", "mark-orphan", "relabel", "remove", "restart", "undrain", "update-record"].sort(),
    );
    expect(actions).toBeGreaterThan(RUNS);
  });
});
