import { LaneState } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { buildInputs, githubRunner, hostPolicy, makePolicy, type FleetExtras, type LaneFixture } from "@lanekeeper/testing";
import { classify, isOrphanVerified, type Classification, type LaneView } from "./classify.js";

const NOW = 1_800_000_000_000;
const S = "acme/api";
const P = "pool";
const pol = makePolicy({
  hosts: { h1: hostPolicy(1), h2: hostPolicy(2) },
  scopes: { [S]: { optIn: true } },
  pools: { [P]: { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
  lanes: [{ scope: S, pool: P, count: 1, hosts: ["h1", "h2"] }],
});

function lane(id: string, hostId: string, p: Partial<LaneFixture> = {}): LaneFixture {
  return { laneId: id, scope: S, pool: P, hostId, ...p };
}

function cls(lanes: LaneFixture[], extras: FleetExtras = {}): Classification {
  const i = buildInputs(pol, lanes, { nowMs: NOW, ...extras });
  return classify(i.policy, i.observed, i.records, { nowMs: NOW });
}

function view(c: Classification, id: string): LaneView {
  const v = c.lanes.find((l) => l.laneId === id);
  if (v === undefined) throw new Error(`no view for ${id}`);
  return v;
}

describe("classify", () => {
  it("calls a lane managed when all three markers agree", () => {
    const v = view(cls([lane("a", "h1")]), "a");
    expect(v).toMatchObject({ class: "managed", certainty: "verified", pending: false });
    expect(v.registration?.id).toBe(5000);
    expect(v.hostLane?.runnerId).toBe(5000);
  });

  it("separates unmanaged (no lk- label) from foreign (lk- labels, not ours)", () => {
    const c = cls([], {
      runners: [
        { scope: S, runner: githubRunner(1, ["self-hosted"]) },
        // Complete identity, unknown lane id, host not in our policy: another coordinator's.
        { scope: S, runner: githubRunner(2, ["lk-managed", "lk-lane-z", "lk-host-elsewhere", `lk-pool-${P}`]) },
        // Upper-case prefix is still reserved.
        { scope: S, runner: githubRunner(3, ["LK-Managed"]) },
      ],
    });
    expect(c.unmanaged.map((r) => r.runner.id)).toEqual([1]);
    expect(c.foreign.map((r) => r.runner.id)).toEqual([2, 3]);
    expect(c.lanes).toEqual([]);
  });

  it("claims a registration labelled for one of our hosts even without a record (an orphan, not foreign)", () => {
    const v = view(cls([lane("b", "h1", { record: false, hostLane: false })]), "b");
    expect(v).toMatchObject({ class: "orphaned", orphanKind: "registration-without-lane" });
    expect(isOrphanVerified(v)).toBe(true);
  });

  it("needs attention when both halves exist but the coordinator has no record", () => {
    expect(view(cls([lane("c", "h1", { record: false })]), "c").attention?.code).toBe("NO_RECORD");
  });

  it("needs attention when a recorded runner lost its identity labels (stripped or incomplete)", () => {
    const stripped = cls([lane("d", "h1", { registration: { id: 900, labels: ["linux"] } })]);
    expect(view(stripped, "d").attention?.code).toBe("LABELS_STRIPPED");
    expect(stripped.unmanaged.map((r) => r.runner.id)).toEqual([900]);
    const partial = cls([lane("e", "h1", { registration: { id: 901, labels: ["lk-lane-e", "linux"] } })]);
    expect(view(partial, "e").attention?.code).toBe("LABELS_INCOMPLETE");
  });

  it("a drained lane (only lk-lane-<id> and lk-draining) is the managed lane when its record names that runner", () => {
    const c = cls([lane("dr", "h1", { registration: { id: 902, labels: ["lk-lane-dr", "lk-draining"] }, record: { runnerId: 902, state: "draining" } })]);
    const v = view(c, "dr");
    expect(v).toMatchObject({ class: "managed", pending: false });
    expect(v.attention).toBeUndefined();
    expect(v.registration?.id).toBe(902);
    expect(c.unmanaged).toEqual([]);
    expect(c.foreign).toEqual([]);
  });

  it("the reduced draining set proves nothing without the record: another runner id, or no record, is not the lane", () => {
    const other = cls([lane("ds", "h1", { registration: { id: 903, labels: ["lk-lane-ds", "lk-draining"] }, record: { runnerId: 904 } })]);
    expect(view(other, "ds").registration?.id).not.toBe(903);
    const none = cls([], { runners: [{ scope: S, runner: githubRunner(905, ["lk-lane-dt", "lk-draining"]) }] });
    expect(none.foreign.map((r) => r.runner.id)).toEqual([905]);
    expect(none.lanes).toEqual([]);
  });

  it("needs attention on disagreements of host, pool, scope or runner id", () => {
    expect(view(cls([lane("f", "h1", { record: { hostId: "h2" } })]), "f").attention?.code).toBe("LANE_ON_OTHER_HOST");
    expect(view(cls([lane("g", "h1", { hostLane: { runnerId: 1 } })]), "g").attention?.code).toBe("RUNNER_ID_MISMATCH");
    expect(view(cls([lane("h", "h1", { hostLane: { pool: "other" } })]), "h").attention?.code).toBe("HOST_MARKER_MISMATCH");
  });

  it("picks the host's current registration among duplicates and keeps the rest aside", () => {
    const labels = ["lk-managed", "lk-lane-i", "lk-host-h1", `lk-pool-${P}`, "linux"];
    const c = cls([lane("i", "h1", { registration: { id: 10 }, hostLane: { runnerId: 11 }, record: { runnerId: 10 } })], {
      runners: [{ scope: S, runner: githubRunner(11, labels) }],
    });
    const v = view(c, "i");
    expect(v.class).toBe("managed");
    expect(v.registration?.id).toBe(11);
    expect(v.extraRegistrations.map((r) => r.id)).toEqual([10]);
  });

  it("gives a lane being created a grace period, then calls it orphaned", () => {
    const young = cls([lane("j", "h1", { record: { state: "creating", createdAtMs: NOW - 1000 }, registration: false, hostLane: false })]);
    expect(view(young, "j")).toMatchObject({ class: "managed", pending: true });
    const old = cls([lane("j", "h1", { record: { state: "creating", createdAtMs: NOW - 3_600_000 }, registration: false, hostLane: false })]);
    expect(view(old, "j")).toMatchObject({ class: "orphaned", orphanKind: "record-without-lane" });
  });

  it("calls an ephemeral lane between jobs managed, not orphaned", () => {
    const v = view(cls([lane("u", "h1", { registration: false, hostLane: { state: LaneState.LANE_STATE_IDLE_UNARMED, runnerId: 0 } })]), "u");
    expect(v).toMatchObject({ class: "managed", orphanKind: undefined });
  });

  it("treats a stale inventory as unknown: absence on that host is no evidence", () => {
    const c = cls([lane("k", "h1", { hostLane: false })], { inventory: { h1: { receivedAtMs: NOW - 3_600_000 } } });
    expect(c.staleHosts).toEqual(["h1"]);
    const v = view(c, "k");
    expect(v).toMatchObject({ class: "managed", hostKnown: false, certainty: "host-unknown" });
  });

  it("lists runners the agents found on their hosts as host-unmanaged", () => {
    const c = cls([], {
      inventory: { h2: { unmanaged: [{ kind: "systemd-unit", name: "actions.runner.acme.x.service", runnerName: "x", githubUrl: "", reason: "NO_MARKER", state: "active" }] } },
    });
    expect(c.hostUnmanaged.map((u) => [u.hostId, u.runner.name])).toEqual([["h2", "actions.runner.acme.x.service"]]);
  });
});
