import { readFileSync } from "node:fs";
import { buildInputs, hostPolicy, makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { emptyInventory } from "../observe/inventory-view.js";
import { natsUnreachableGap } from "../observe/view-gaps.js";
import { plan } from "../plan/planner.js";
import { degradedLines, planToJson, planToText } from "./render-plan.js";

const NOW = 1_800_000_000_000;
const policy = makePolicy({
  hosts: { h1: hostPolicy(1, true, 4) },
  scopes: { "acme/api": { optIn: true } },
  pools: { "linux-x64": { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
  lanes: [{ scope: "acme/api", pool: "linux-x64", count: 1, hosts: ["h1"] }],
});

/** A healthy lane seen from GitHub alone: no record, no inventory (NATS down). */
function blindPlan(): ReturnType<typeof plan> {
  const i = buildInputs(policy, [{ laneId: "linux-x64-l1", scope: "acme/api", pool: "linux-x64", hostId: "h1", record: false }], { nowMs: NOW });
  return plan(policy, { scopes: i.observed.scopes, inventory: emptyInventory() }, [], { nowMs: NOW });
}

describe("a plan from a degraded view", () => {
  it("never says the fleet matches the policy, says DEGRADED loudly, and labels no lane orphaned for lack of evidence", () => {
    const p = blindPlan();
    expect(p.actions).toEqual([]); // nothing destructive (nor anything else) rests on missing evidence
    const gaps = [natsUnreachableGap("nats://127.0.0.1:4222", "ECONNREFUSED")];
    const text = planToText(p, { notes: [], gaps });
    expect(text).not.toMatch(/matches the policy as far/);
    expect(text).toMatch(/does NOT mean the fleet matches the policy/);
    expect(text).toMatch(/^!! DEGRADED VIEW: .*NATS_UNREACHABLE/m);
    expect(text).toMatch(/Lanes: 0 managed, 0 orphaned, 1 not judged \(evidence incomplete\)/);
    const json = planToJson(p, { notes: [], gaps });
    expect(json).toMatchObject({ degraded: true, classification: { lanes: { orphaned: 0, unverified: 1 } } });
    expect(degradedLines(gaps)).toMatch(/^DEGRADED \(NATS_UNREACHABLE\): NATS at nats:\/\/127\.0\.0\.1:4222 .*\n {2}fix: start NATS/);
  });

  it("a complete view with nothing to do still says the fleet matches", () => {
    const i = buildInputs(policy, [{ laneId: "linux-x64-l1", scope: "acme/api", pool: "linux-x64", hostId: "h1" }], { nowMs: NOW });
    const p = plan(policy, i.observed, i.records, { nowMs: NOW });
    expect(p.actions).toEqual([]);
    const text = planToText(p, { notes: [], gaps: [] });
    expect(text).toMatch(/No actions: the fleet matches the policy/);
    expect(planToJson(p, { notes: [] })).toMatchObject({ degraded: false, gaps: [] });
  });
});

describe("a plan with runner version drift", () => {
  it("lists the lanes that run another version than their pool's, and the lag warning", () => {
    const pinned = makePolicy({ ...policy, pools: { "linux-x64": { ...policy.pools["linux-x64"]!, runnerVersion: "2.331.0" } } });
    const lanes = ["l1", "l2"].map((l) => ({ laneId: `linux-x64-${l}`, scope: "acme/api", pool: "linux-x64", hostId: "h1" }));
    const two = makePolicy({ ...pinned, lanes: [{ scope: "acme/api", pool: "linux-x64", count: 2, hosts: ["h1"] }] });
    const i = buildInputs(two, lanes, {
      nowMs: NOW,
      runnerReleases: { status: "ok", latest: "2.334.0", downloads: [] },
    });
    const p = plan(two, i.observed, i.records, { nowMs: NOW });
    const text = planToText(p, { notes: [] });
    expect(text).toMatch(/^Runner versions: 2 lane\(s\) differ from their pool's$/m);
    expect(text).toMatch(/^linux-x64-l1 +h1 +acme\/api linux-x64 +2\.330\.0 +2\.331\.0 +upgrade$/m);
    expect(text).toMatch(/^linux-x64-l2 +h1 +acme\/api linux-x64 +2\.330\.0 +2\.331\.0 +waiting$/m);
    expect(text).toMatch(/RUNNER_VERSION_LAG: pool linux-x64 pins runner 2\.331\.0, 3 minor releases behind GitHub's current 2\.334\.0/);
    expect(planToJson(p, { notes: [] })).toMatchObject({ versionDrift: [{ laneId: "linux-x64-l1", status: "upgrade" }, { laneId: "linux-x64-l2", status: "waiting" }] });
  });
});

/** The fenced block after `<!-- docs-example: <name> -->` in docs/runner-versions.md. */
function docsExample(name: string): string {
  const doc = readFileSync(new URL("../../../../docs/runner-versions.md", import.meta.url), "utf8");
  const m = new RegExp(`<!-- docs-example: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\`\\n`).exec(doc);
  if (m?.[1] === undefined) throw new Error(`docs/runner-versions.md has no example ${name}`);
  return m[1];
}

describe("a plan whose pool's upgrade window is closed (the worked example of docs/runner-versions.md)", () => {
  const lanes = [
    ["4f12a8", "build01"],
    ["9c03d1", "build02"],
    ["77e0b2", "build03"],
  ].map(([id, hostId]) => ({ laneId: `linux-x64-${id}`, scope: "acme/api", pool: "linux-x64", hostId: hostId!, hostLane: { runnerVersion: "2.335.0" } }));
  const pol = makePolicy({
    hosts: { build01: hostPolicy(1, true, 4), build02: hostPolicy(2, true, 4), build03: hostPolicy(3, true, 4) },
    scopes: { "acme/api": { optIn: true } },
    pools: {
      "linux-x64": {
        labels: ["linux", "x64"],
        backend: "systemd",
        mode: "persistent",
        runnerVersion: "2.336.0",
        upgrade: { maxUnavailable: 1, maxVersionLag: 1, window: { name: "nightly", cron: "0 22 * * 1-5", duration: "4h", timezone: "Europe/Berlin" } },
      },
    },
    lanes: [{ scope: "acme/api", pool: "linux-x64", count: 3, hosts: ["build01", "build02", "build03"] }],
  });
  const planAt = (iso: string): ReturnType<typeof plan> => {
    const nowMs = Date.parse(iso);
    const i = buildInputs(pol, lanes, { nowMs });
    return plan(pol, i.observed, i.records, { nowMs });
  };
  const squash = (t: string): string[] => t.split("\n").map((l) => l.replace(/ +/g, " ").trim()).filter((l) => l !== "");

  it("prints the lines the docs show, text and --json", () => {
    const p = planAt("2026-12-04T14:00:00Z");
    expect(p.actions).toEqual([]);
    const text = squash(planToText(p, { notes: [] }));
    for (const line of squash(docsExample("upgrade-window-text"))) expect(text).toContain(line);
    const json = planToJson(p, { notes: [] }) as { versionDrift: unknown[] };
    expect(json.versionDrift[0]).toEqual(JSON.parse(docsExample("upgrade-window-json")));
  });

  it("upgrades inside the window, and after it closes on Friday names Monday's opening", () => {
    const open = planAt("2026-12-04T21:10:00Z");
    expect(open.versionDrift.map((d) => [d.laneId, d.status])).toEqual([
      ["linux-x64-4f12a8", "upgrade"],
      ["linux-x64-77e0b2", "waiting"],
      ["linux-x64-9c03d1", "waiting"],
    ]);
    expect(planAt("2026-12-05T01:00:00Z").versionDrift[0]?.note).toBe("waiting for upgrade window nightly, opens 2026-12-07 22:00 Europe/Berlin (2026-12-07T21:00:00Z)");
  });
});
