import type { Policy } from "@lanekeeper/shared";
import { hostPolicy, makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import type { CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { statusRound } from "./status-command.js";

// `status` per pool, with a stand-in coordinator (no lanes, GitHub lists none); the real thing runs in the e2e demo.
const NOW = Date.parse("2026-12-04T12:00:00Z");
const S = "acme/api";

function policy(lanes: Policy["lanes"]): Policy {
  return makePolicy({
    hosts: { h1: hostPolicy(1, true, 4) },
    scopes: { [S]: { optIn: true } },
    pools: { "linux-x64": { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes,
  });
}

function fakeContext(p: Policy): CoordinatorContext {
  return {
    policy: p,
    waitForInventories: () => Promise.resolve(),
    github: { listRunners: () => Promise.resolve({ runners: [], complete: true }), rateLimit: () => ({}) },
    store: { list: () => Promise.resolve([]), retiredLaneIds: () => Promise.resolve([]) },
    inventory: { latest: () => Promise.resolve(undefined) },
    clock: { now: () => NOW },
  } as unknown as CoordinatorContext;
}

async function status(p: Policy, json: boolean): Promise<string> {
  let out = "";
  const io: CliIo = { out: (t) => void (out += t), err: () => undefined, env: {}, cwd: "/", now: () => NOW };
  expect(await statusRound(fakeContext(p), { json }, io)).toBe(ExitCode.OK);
  return out;
}

describe("lanekeeper status: queue-driven pools", () => {
  it("prints queued, running, idle, wanted and why per scaling pool (demand unknown here: brought to min, never scaled down)", async () => {
    const p = policy([{ scope: S, pool: "linux-x64", hosts: ["h1"], scaling: { min: 2, max: 4, idle: 0, scaleDownAfter: "5m", schedules: [] } }]);
    const text = await status(p, false);
    expect(text).toContain("Queue-driven pools:");
    expect(text).toMatch(/acme\/api\s+linux-x64\s+0\s+0\s+0\s+2 \(2-4\)\s+demand unknown/);
    const json = JSON.parse(await status(p, true)) as { pools: { pool: string; wanted: number; queued: number; demandKnown: boolean }[] };
    expect(json.pools).toEqual([expect.objectContaining({ scope: S, pool: "linux-x64", wanted: 2, queued: 0, running: 0, idle: 0, demandKnown: false })]);
  });

  it("still works, and prints no pool table, when no pool scales", async () => {
    const p = policy([{ scope: S, pool: "linux-x64", hosts: ["h1"], count: 1 }]);
    expect(await status(p, false)).not.toContain("Queue-driven pools");
    expect((JSON.parse(await status(p, true)) as { pools: unknown[] }).pools).toEqual([]);
  });
});
