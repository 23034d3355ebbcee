// Acceptance: injected failures end in a safe state with a recovery note, and the fleet converges afterwards
// (invariant 7: no orphaned registration, no leaked unit). Four faults, each injected into the real component:
// a lane whose runner cannot start (a broken runner distribution), GitHub answering 502 to everything, the agent
// killed with SIGKILL in the middle of creating a lane, and nats-server restarted (and halted) while operations
// are in flight. Jobs running through the faults must still succeed.
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { runnerEmulatorDir, type Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apply,
  applyOk,
  describeCli,
  e2eFleet,
  eventually,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
  fleetState,
  followRecoveryNotes,
  laneCommand,
  laneCommandOk,
  laneDirs,
  laneUnits,
  managedRunners,
  pendingActions,
  waitManagedOnline,
} from "./e2e-fixture.js";

const SCOPE = "acme/api";
const HOST = "build01";
const BROKEN_VERSION = "2.336.1";

let fleet: Fleet;
let want = 1;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [{ hostId: HOST, runtime: "systemd", capacity: 8, config: { health: { maxRestarts: 2, windowMs: 600_000, backoffBaseMs: 200, backoffMaxMs: 1000 } } }],
    pools: { "linux-x64": { backend: "systemd", labels: ["lanes-systemd"] } },
    lanes: [{ scope: SCOPE, pool: "linux-x64", count: want, hosts: [HOST] }],
    handmade: { container: false },
    resultTimeoutMs: 20_000,
    // The broken lane's verify-online waits this long before it fails safe; the default (120 s) is an operator's.
    verifyTimeoutMs: 45_000,
  });
  await applyOk(fleet);
  await waitManagedOnline(fleet, want);
});

afterAll(async () => {
  await fleet?.stop();
});

async function setCount(n: number, pool = "linux-x64"): Promise<void> {
  await fleet.editPolicy((doc) => {
    const lanes = doc.lanes as { pool: string; count: number }[];
    const entry = lanes.find((l) => l.pool === pool);
    if (entry) entry.count = n;
  });
}

/**
 * Invariant 7: `want` lanes online and in service, every lanekeeper registration belongs to a lane the host has
 * (no orphaned registration), every lane unit belongs to a registration (no leaked unit), and the plan is empty.
 */
async function expectConverged(): Promise<void> {
  const online = await waitManagedOnline(fleet, want).catch(async (e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await fleetState(fleet)}`);
  });
  const names = online.map((r) => r.name).sort();
  expect((await managedRunners(fleet)).map((r) => r.name).sort()).toEqual(names);
  expect(await laneUnits(fleet, HOST)).toEqual(names.map((l) => `lanekeeper-lane-${l}.service`));
  expect(await laneDirs(fleet, HOST)).toEqual(names);
  const status = await fleet.agent(HOST).status();
  expect((status.lanes ?? []).map((l) => l.laneId).sort()).toEqual(names);
  expect(await pendingActions(fleet)).toEqual([]);
  await expectUnmanagedUntouched(fleet);
}

/**
 * What an operator does after a fault: run the commands the recovery notes name, and apply, until apply has
 * nothing left to do (at most `runs` rounds); then check convergence.
 */
async function applyUntilConverged(runs = 4): Promise<void> {
  for (let i = 0; i < runs; i++) {
    await followRecoveryNotes(fleet);
    if ((await pendingActions(fleet)).length === 0) break;
    await apply(fleet);
  }
  await expectConverged();
}

describe("injected failures", () => {
  it("a runner that cannot start: safe state and a recovery note; fixed, the lane converges", async () => {
    // A runner distribution whose run.sh fails at once (config.sh works: the runner registers, then dies).
    const distPath = parseDocument(await readFile(fleet.agent(HOST).configPath, "utf8")).get("runnerDistPath") as string;
    const broken = join(distPath, BROKEN_VERSION);
    await cp(runnerEmulatorDir, broken, { recursive: true });
    const runSh = await readFile(join(broken, "run.sh"), "utf8");
    await writeFile(join(broken, "run.sh"), '#!/bin/bash\necho "injected start failure" >&2\nexit 1\n', { mode: 0o755 });
    await fleet.editPolicy((doc) => {
      (doc.pools as Record<string, unknown>)["linux-broken"] = { backend: "systemd", runnerVersion: BROKEN_VERSION, labels: ["lanes-broken"], mode: "persistent" };
      (doc.lanes as unknown[]).push({ scope: SCOPE, pool: "linux-broken", count: 1, hosts: [HOST] });
    });
    await fleet.agent(HOST).editConfig((doc) => {
      (doc.control as { pools: string[] }).pools.push("linux-broken");
    });
    await fleet.agent(HOST).restart();

    // The coordinator plans with the newest signed inventory it has; until the restarted agent's inventory
    // (with the extended allowlist) arrives, it rightly plans nothing for the new pool (HOST_NOT_ALLOWED).
    const { cli, report } = await eventually(async () => {
      const r = await apply(fleet);
      return r.report?.outcomes.some((o) => o.kind === "create") ? r : undefined;
    }, "apply to plan the linux-broken lane", 120_000, 2000);
    expect(cli.code, describeCli(cli)).not.toBe(0);
    const failed = report?.outcomes.find((o) => o.kind === "create" && o.status !== "succeeded");
    expect(failed, describeCli(cli)).toBeDefined();
    expect(["untouched", "stopped", "created-unverified"]).toContain(failed!.safeState);
    expect(failed!.recovery).toMatch(/lanekeeper (apply|lanes (restart|remove))/);
    // The healthy lane was not disturbed.
    await waitManagedOnline(fleet, want);

    // Fix the distribution. A lane runs its own copy of it, made at create, so the broken lane is replaced:
    // remove it (it never ran a job) and let apply create a new one from the fixed distribution.
    await writeFile(join(broken, "run.sh"), runSh, { mode: 0o755 });
    const lane = failed!.laneId;
    if ((await laneDirs(fleet, HOST)).includes(lane) || (await managedRunners(fleet)).some((r) => r.name === lane)) {
      const removed = await laneCommand(fleet, "remove", lane);
      expect(removed.cli.code, describeCli(removed.cli)).toBe(0);
    }
    want += 1;
    await applyUntilConverged();
    expect((await managedRunners(fleet)).some((r) => r.labels.includes("lk-pool-linux-broken"))).toBe(true);
  });

  it("GitHub answering 502: nothing half-done, a recovery note; after GitHub recovers, apply converges", async () => {
    await setCount(2);
    const unitsBefore = await laneUnits(fleet, HOST);
    await fleet.github.control.setFaults({ errorRate: 1, errorStatus: 502 });
    try {
      const { cli, report } = await apply(fleet);
      expect(cli.code, describeCli(cli)).not.toBe(0);
      for (const o of report?.outcomes ?? []) {
        expect(o.status, JSON.stringify(o)).not.toBe("succeeded");
        expect(o.safeState, JSON.stringify(o)).toBe("untouched");
        expect(o.recovery, JSON.stringify(o)).toBeTruthy();
      }
      expect(cli.stdout + cli.stderr).toMatch(/GITHUB_(API|UNAVAILABLE)|5\d\d|unavailable/i);
    } finally {
      await fleet.github.control.clearFaults();
    }
    expect(await laneUnits(fleet, HOST)).toEqual(unitsBefore);
    want += 1;
    await applyUntilConverged();
  });

  it("the agent killed with SIGKILL while creating a lane: the agent recovers, nothing leaks, apply converges", async () => {
    await setCount(3);
    const dirsBefore = await laneDirs(fleet, HOST);
    const running = apply(fleet);
    // Kill the agent as soon as the new lane exists on the host (its directory is the first journaled step).
    await eventually(async () => (await laneDirs(fleet, HOST)).length > dirsBefore.length, "the new lane to appear on the host", 120_000, 50);
    await fleet.agent(HOST).kill9();
    const { cli, report } = await running;
    expect(cli.code, describeCli(cli)).not.toBe(0);
    const failed = report?.outcomes.find((o) => o.kind === "create" && o.status !== "succeeded");
    expect(failed, describeCli(cli)).toBeDefined();
    expect(failed!.recovery).toBeTruthy();
    // The agent's recovery may finish the create: the note never names a destructive command for this lane.
    expect(failed!.recovery).not.toMatch(new RegExp(`lanekeeper lanes (remove|restart) ${failed!.laneId}`));
    // The other lanes kept running without their agent.
    expect((await managedRunners(fleet)).filter((r) => r.status === "online").length).toBeGreaterThanOrEqual(want);

    await fleet.agent(HOST).start();
    want += 1;
    await applyUntilConverged();
  });

  it("nats-server restarted during a drain and halted during an apply: jobs finish, nothing is lost, apply converges", async () => {
    // Restart while a drain waits on a running job.
    const { id: jobId } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-systemd"], durationMs: 10_000 });
    const job = await eventually(async () => {
      const j = await fleet.github.control.getJob(jobId);
      return j.status === "in_progress" ? j : undefined;
    }, "job to start");
    const lane = job.runnerName!;
    const drain = laneCommand(fleet, "drain", lane);
    await eventually(async () => (await managedRunners(fleet)).find((r) => r.name === lane)?.labels.includes("lk-draining"), "lk-draining");
    await fleet.nats.restart();
    const drained = await drain;
    if (drained.cli.code !== 0) {
      // Failed safe: still drained, job untouched; the recovery note's command finishes it.
      expect(drained.report?.outcomes[0]?.safeState, describeCli(drained.cli)).toBe("drained");
      await laneCommandOk(fleet, "drain", lane);
    }
    await expectJobsSucceeded(fleet, [jobId]);
    await laneCommandOk(fleet, "release", lane);
    await waitManagedOnline(fleet, want);

    // Halted while apply wants one more lane: nothing is created, the agent keeps its lanes running.
    await setCount(4);
    const unitsBefore = await laneUnits(fleet, HOST);
    await fleet.nats.halt();
    try {
      const { cli } = await apply(fleet);
      expect(cli.code, describeCli(cli)).not.toBe(0);
      expect(await laneUnits(fleet, HOST)).toEqual(unitsBefore);
      expect((await managedRunners(fleet)).filter((r) => r.status === "online").length).toBe(want);
      expect((await fleet.agent(HOST).status()).natsState).not.toBe("connected");
    } finally {
      await fleet.nats.resume();
    }
    await eventually(async () => (await fleet.agent(HOST).status()).natsState === "connected", "the agent to reconnect to NATS");
    want += 1;
    await applyUntilConverged();
  });
});
