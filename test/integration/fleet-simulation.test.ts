// The fleet simulation behind `npm run bench:fleet`, at a size that runs in seconds, so it cannot rot: simulated
// hosts (the real agent daemon and intake, with the in-memory runtime whose runners register and go online on
// the GitHub emulator) in two worker processes over a real nats-server, and the real coordinator CLI. `apply`
// creates every lane through signed intents, GitHub shows each one online with its canonical labels, a plan
// right after is converged, each host holds exactly the lanes of the scopes it allows, and both audit chains
// (the coordinator's and every simulated agent's) verify.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_BIN, runCommand, startGitHubEmulator, startNatsServer, type GitHubEmulator } from "@lanekeeper/harness";
import { startFleetSimulation, type FleetSimulation } from "@lanekeeper/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SIZE = { hosts: 3, scopes: 2, lanes: 6 };

let dir: string;
let sim: FleetSimulation;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-fleet-sim-"));
  sim = await startFleetSimulation({ ...SIZE, workers: 2, dir, deps: { startGitHubEmulator, startNatsServer }, inventoryIntervalMs: 1000 });
});

afterAll(async () => {
  await sim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("fleet simulation", () => {
  it("every host is enrolled and running the agent", async () => {
    const s = await sim.workers.stats();
    expect(s.hosts).toBe(SIZE.hosts);
    expect(sim.workers.enrollments.map((e) => e.hostId)).toEqual(sim.layout.hostIds);
    expect(s.lanes).toBe(0);
  });

  it("lanekeeper apply creates every lane through the simulated agents, online on GitHub", async () => {
    const routes = async (): Promise<Record<string, { calls: number }>> => (await (sim.github as GitHubEmulator).control.stats()).byRoute;
    const before = await routes();
    const r = await sim.cli(["apply", "--yes", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { outcomes: { kind: string; status: string }[] };
    const creates = report.outcomes.filter((o) => o.kind === "create");
    expect(creates).toHaveLength(SIZE.lanes);
    expect(creates.every((o) => o.status === "succeeded")).toBe(true);

    const s = await sim.workers.stats();
    expect(s).toMatchObject({ lanes: SIZE.lanes, online: SIZE.lanes, intents: SIZE.lanes });
    // Verified online from the scopes' shared listings (no GET of each runner); the runner downloads listing read
    // once for the plan and every create (not once per create).
    const after = await routes();
    const calls = (route: string): number => (after[route]?.calls ?? 0) - (before[route]?.calls ?? 0);
    expect(calls("GET /repos/{owner}/{repo}/actions/runners/{runner_id}")).toBe(0);
    expect(calls("GET /repos/{owner}/{repo}/actions/runners/downloads")).toBe(1);
    const runners = await (sim.github as GitHubEmulator).control.listRunners();
    expect(runners).toHaveLength(SIZE.lanes);
    for (const r of runners) {
      expect(r.status).toBe("online");
      expect(r.labels).toContain("lk-managed");
      expect(r.labels).toContain("lk-pool-sim-linux");
      const host = r.labels.find((l) => l.startsWith("lk-host-"))?.slice("lk-host-".length) ?? "";
      // A lane sits only on a host that allows its scope (the host's local allowlist is the layout's).
      expect(sim.layout.hostScopes.get(host)).toContain(r.scope);
    }
  });

  it("a plan right after is converged", async () => {
    const r = await sim.cli(["plan", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { actions: unknown[]; groups: { desired: number; current: number }[] };
    expect(plan.actions).toEqual([]);
    expect(plan.groups.reduce((a, g) => a + g.current, 0)).toBe(SIZE.lanes);
  });

  it("a serve cycle over the converged fleet logs its observe+plan time and plans nothing (the bench's steady figure)", async () => {
    const logFile = join(dir, "serve-once.log");
    const r = await sim.cli(["serve", "--once"], { env: { LANEKEEPER_LOG_LEVEL: "info", LANEKEEPER_LOG_FILE: logFile } });
    expect(r.code, r.stderr).toBe(0);
    const cycles = (await readFile(logFile, "utf8"))
      .split("\n")
      .filter((l) => l.includes('"reconcile cycle"'))
      .map((l) => JSON.parse(l) as { observePlanMs: number; cycleMs: number; actions: number });
    expect(cycles).toHaveLength(1);
    expect(cycles[0]?.actions).toBe(0);
    expect(cycles[0]?.observePlanMs).toBeGreaterThan(0);
    expect(cycles[0]?.cycleMs).toBeGreaterThanOrEqual(cycles[0]?.observePlanMs ?? 0);
  });

  it("the coordinator's audit chain and every simulated agent's verify", async () => {
    const r = await sim.cli(["audit", "verify", "--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const hostId of sim.layout.hostIds) {
      const a = await runCommand(process.execPath, [AGENT_BIN, "audit", "verify", "--json", "--config", join(dir, "hosts", hostId, "agent.yaml")], { timeoutMs: 60_000 });
      expect(a.code, a.stdout + a.stderr).toBe(0);
      // Each create left its intake record and the lane manager's records in the host's own chain.
      expect((JSON.parse(a.stdout) as { count: number }).count).toBeGreaterThan(0);
    }
  });
});
