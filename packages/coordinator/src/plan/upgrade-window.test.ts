import { type Policy, type PoolPolicy, type UpgradeWindow } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { buildInputs, hostPolicy, makePolicy, type LaneFixture } from "@lanekeeper/testing";
import type { UpgradeAction } from "./action.js";
import type { Plan } from "./plan-types.js";
import { plan } from "./planner.js";

const S = "acme/api";
const P = "linux-x64";
const at = (iso: string): number => Date.parse(iso);

const NIGHTLY: UpgradeWindow = { name: "nightly", cron: "0 22 * * *", duration: "4h", timezone: "UTC" };

function policy(count: number, window: UpgradeWindow | undefined, pool: Partial<PoolPolicy> = {}): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 8), h2: hostPolicy(2, true, 8), h3: hostPolicy(3, true, 8) },
    scopes: { [S]: { optIn: true } },
    pools: {
      [P]: { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.331.0", upgrade: { maxUnavailable: 1, ...(window === undefined ? {} : { window }) }, ...pool },
    },
    lanes: [{ scope: S, pool: P, count, hosts: ["h1", "h2", "h3"] }],
  });
}

function lane(n: number, p: Partial<LaneFixture> = {}): LaneFixture {
  return { laneId: `${P}-l${n}`, scope: S, pool: P, hostId: `h${(n % 3) + 1}`, hostLane: { runnerVersion: "2.330.0" }, ...p };
}

function run(pol: Policy, lanes: LaneFixture[], nowMs: number): Plan {
  const i = buildInputs(pol, lanes, { nowMs });
  return plan(i.policy, i.observed, i.records, { nowMs });
}

const upgrades = (p: Plan): UpgradeAction[] => p.actions.filter((a): a is UpgradeAction => a.kind === "upgrade");
const codes = (p: Plan): string[] => p.warnings.map((w) => w.code);
const three = (): LaneFixture[] => [lane(1), lane(2), lane(3)];

describe("plan: upgrade window", () => {
  it("starts no upgrade outside the window and shows every drifted lane waiting for it, in text and evidence", () => {
    const p = run(policy(3, NIGHTLY), three(), at("2026-12-05T12:00:00Z"));
    expect(upgrades(p)).toEqual([]);
    const note = "waiting for upgrade window nightly, opens 2026-12-05 22:00 UTC (2026-12-05T22:00:00Z)";
    expect(p.versionDrift.map((d) => [d.laneId, d.status, d.note])).toEqual([
      [`${P}-l1`, "window", note],
      [`${P}-l2`, "window", note],
      [`${P}-l3`, "window", note],
    ]);
    expect(p.versionDrift[0]?.evidence).toEqual([
      {
        source: "upgrade-window",
        pool: P,
        name: "nightly",
        cron: "0 22 * * *",
        duration: "4h",
        timezone: "UTC",
        open: false,
        startMs: null,
        endMs: null,
        opensAtMs: at("2026-12-05T22:00:00Z"),
        opensAt: "2026-12-05 22:00 UTC (2026-12-05T22:00:00Z)",
      },
    ]);
    expect(codes(p)).toContain("UPGRADE_WINDOW_CLOSED");
    expect(codes(p)).not.toContain("UPGRADE_WAITING");
    expect(p.warnings.find((w) => w.code === "UPGRADE_WINDOW_CLOSED")?.message).toBe(
      `3 lane(s) of ${S}/${P} wait for their upgrade to 2.331.0: ${note} (pools.${P}.upgrade.window)`,
    );
  });

  it("upgrades inside the window (a window spanning midnight too), with its evidence and a guard apply re-checks", () => {
    for (const now of ["2026-12-05T22:00:00Z", "2026-12-06T01:59:59Z"]) {
      const p = run(policy(3, NIGHTLY), three(), at(now));
      expect(upgrades(p).map((a) => a.laneId), now).toEqual([`${P}-l1`]);
      const u = upgrades(p)[0]!;
      expect(u.guards).toContainEqual({ kind: "upgrade-window-open", pool: P, window: "nightly" });
      expect(u.evidence).toContainEqual(expect.objectContaining({ source: "upgrade-window", open: true, startMs: at("2026-12-05T22:00:00Z"), endMs: at("2026-12-06T02:00:00Z") }));
      expect(p.versionDrift.map((d) => d.status)).toEqual(["upgrade", "waiting", "waiting"]);
    }
    // The end instant is outside: at 02:00 the window is closed until 22:00.
    const closed = run(policy(3, NIGHTLY), three(), at("2026-12-06T02:00:00Z"));
    expect(upgrades(closed)).toEqual([]);
    expect(closed.versionDrift[0]?.note).toBe("waiting for upgrade window nightly, opens 2026-12-06 22:00 UTC (2026-12-06T22:00:00Z)");
  });

  it("reads the cron in the window's time zone", () => {
    const berlin: UpgradeWindow = { ...NIGHTLY, timezone: "Europe/Berlin" };
    // 21:30 UTC in December is 22:30 in Berlin: open there, though 22:00 UTC has not come yet.
    expect(upgrades(run(policy(3, berlin), three(), at("2026-12-05T21:30:00Z")))).toHaveLength(1);
    expect(upgrades(run(policy(3, NIGHTLY), three(), at("2026-12-05T21:30:00Z")))).toEqual([]);
    // 01:30 UTC is 02:30 in Berlin: the 4-hour window that opened at 22:00 Berlin (21:00 UTC) has closed.
    const p = run(policy(3, berlin), three(), at("2026-12-06T01:30:00Z"));
    expect(upgrades(p)).toEqual([]);
    expect(p.versionDrift[0]?.note).toBe("waiting for upgrade window nightly, opens 2026-12-06 22:00 Europe/Berlin (2026-12-06T21:00:00Z)");
    // Summer time: 22:00 in Berlin is 20:00 UTC.
    expect(run(policy(3, berlin), three(), at("2026-07-01T12:00:00Z")).versionDrift[0]?.note).toBe(
      "waiting for upgrade window nightly, opens 2026-07-01 22:00 Europe/Berlin (2026-07-01T20:00:00Z)",
    );
  });

  it("a window that closes mid-rollout: the lane under way finishes and is put back in service, the rest wait", () => {
    const pol = policy(3, NIGHTLY);
    // 01:50, inside: the rollout takes lane 1.
    const first = run(pol, three(), at("2026-12-06T01:50:00Z"));
    expect(upgrades(first).map((a) => a.laneId)).toEqual([`${P}-l1`]);
    // 02:10, closed. Lane 1's upgrade was under way: swapped to the new version, still drained (its apply stopped
    // before restore-labels). It is no longer drift; the leftover drain is lifted, which is how it finishes.
    const drainedOnNew = lane(1, { hostLane: { runnerVersion: "2.331.0", draining: true }, registration: { labels: ["lk-draining", `lk-lane-${P}-l1`] } });
    const later = run(pol, [drainedOnNew, lane(2), lane(3)], at("2026-12-06T02:10:00Z"));
    expect(upgrades(later)).toEqual([]);
    expect(later.actions.map((a) => [a.kind, a.laneId, a.reason.code])).toEqual([["undrain", `${P}-l1`, "LEFTOVER_DRAIN"]]);
    expect(later.versionDrift.map((d) => [d.laneId, d.status])).toEqual([
      [`${P}-l2`, "window"],
      [`${P}-l3`, "window"],
    ]);
    // Stopped before its swap (drained, old version): the planner does not start the swap outside the window, it
    // puts the lane back in service on the version it runs.
    const drainedOnOld = lane(1, { hostLane: { runnerVersion: "2.330.0", draining: true }, registration: { labels: ["lk-draining", `lk-lane-${P}-l1`] } });
    const stopped = run(pol, [drainedOnOld, lane(2), lane(3)], at("2026-12-06T02:10:00Z"));
    expect(upgrades(stopped)).toEqual([]);
    expect(stopped.actions.map((a) => [a.kind, a.laneId])).toEqual([["undrain", `${P}-l1`]]);
    // The next night the rollout resumes where it stopped.
    const next = run(pol, [lane(1, { hostLane: { runnerVersion: "2.331.0" } }), lane(2), lane(3)], at("2026-12-06T22:05:00Z"));
    expect(upgrades(next).map((a) => a.laneId)).toEqual([`${P}-l2`]);
  });

  it("changes nothing without a window, and a closed window holds no lane that runs the wanted version", () => {
    const p = run(policy(3, undefined), three(), at("2026-12-05T12:00:00Z"));
    expect(upgrades(p)).toHaveLength(1);
    expect(upgrades(p)[0]!.guards.some((g) => g.kind === "upgrade-window-open")).toBe(false);
    const same = run(policy(3, NIGHTLY, { runnerVersion: "2.330.0" }), three(), at("2026-12-05T12:00:00Z"));
    expect(same.versionDrift).toEqual([]);
    expect(codes(same)).not.toContain("UPGRADE_WINDOW_CLOSED");
  });
});
