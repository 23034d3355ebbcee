import { buildInputs, hostPolicy, makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { natsUnreachableGap, viewGaps } from "./view-gaps.js";

const NOW = 1_800_000_000_000;
const policy = makePolicy({
  hosts: { h1: hostPolicy(1, true, 4), h2: hostPolicy(2, true, 4), off: hostPolicy(3, false, 4) },
  scopes: { "acme/api": { optIn: true }, "acme/web": { optIn: true } },
  pools: { "linux-x64": { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
  lanes: [{ scope: "acme/api", pool: "linux-x64", count: 1, hosts: ["h1", "h2"] }],
});

describe("viewGaps", () => {
  it("a complete view has no gap (a host that has not opted in is not missed)", () => {
    const i = buildInputs(policy, [], { nowMs: NOW, knownHosts: ["h1", "h2"] });
    expect(viewGaps({ policy, observed: i.observed, nowMs: NOW })).toEqual([]);
  });

  it("names opted-in hosts without an inventory, stale ones, and scopes GitHub did not list (completely)", () => {
    const i = buildInputs(policy, [], {
      nowMs: NOW,
      knownHosts: ["h2"],
      inventory: { h2: { receivedAtMs: NOW - 120_000 } },
      scopes: {
        "acme/api": { scope: "acme/api", status: "unavailable", code: "GITHUB_API", message: "boom" },
        "acme/web": { scope: "acme/web", status: "ok", runners: [], complete: false, observedAtMs: NOW },
      },
    });
    const gaps = viewGaps({ policy, observed: i.observed, nowMs: NOW });
    expect(gaps.map((g) => [g.code, g.subjects])).toEqual([
      ["INVENTORY_MISSING", ["h1"]],
      ["INVENTORY_STALE", ["h2"]],
      ["GITHUB_SCOPE_UNAVAILABLE", ["acme/api (GITHUB_API)"]],
      ["GITHUB_SCOPE_INCOMPLETE", ["acme/web"]],
    ]);
    for (const g of gaps) expect(g.fix).toMatch(/\S/);
  });

  it("a source that was not opened replaces the per-host gaps", () => {
    const i = buildInputs(policy, [], { nowMs: NOW, knownHosts: [] });
    const gaps = viewGaps({ policy, observed: i.observed, nowMs: NOW, unopened: [natsUnreachableGap("nats://n:4222", "ECONNREFUSED")] });
    expect(gaps.map((g) => g.code)).toEqual(["NATS_UNREACHABLE"]);
    expect(gaps[0]?.message).toContain("nats://n:4222");
  });
});
