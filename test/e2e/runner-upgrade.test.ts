// Acceptance (issue 15): a pool's runner version change rolls across a real fleet (systemd sandbox hosts, the
// GitHub emulator, nats-server, the coordinator CLI) lane by lane through the drain protocol while jobs run, none
// cancelled, at most `upgrade.maxUnavailable` lane out of service at a time; `runnerVersion: latest` follows a version
// the emulator publishes; an upgrade that fails (the archive does not match GitHub's checksum) is rolled back and
// the lane marked needs-attention, halting the rollout; the runbook's "roll back a runner version by hand" runs as
// written and brings the pool back; a release that does not start is rolled back from the copy the host verified. Nothing is staged by hand: every version is a real tarball of the runner
// emulator that the emulator publishes and the agents fetch and verify from the signed intents.
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COORDINATOR_BIN, FLEET_RUNNER_VERSION, runCommand, type Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyOk,
  apply,
  auditChain,
  e2eFleet,
  eventually,
  expectCompleteOperations,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
  fleetState,
  managedRunners,
  planJson,
  waitManagedOnline,
} from "./e2e-fixture.js";
import { loadProcedure, setVariables, stepScript } from "./runbook-procedure.js";

const SCOPE = "acme/api";
const POOL = "linux-x64";
const LABEL = "lanes-systemd";
const LANES = 4;
const NEW_VERSION = "2.337.0";
const BAD_VERSION = "2.338.0";
/** A release whose listener exits 1 at once: it unpacks and verifies, but the lane does not come back. */
const BROKEN_VERSION = "2.339.0";
const JOB_MS = 6000;

let fleet: Fleet;

/** What each host reports its lanes run, by lane id. */
async function hostVersions(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const a of fleet.agents) {
    const st = await a.status();
    for (const l of st.lanes ?? []) out.set(l.laneId, String((l as { runnerVersion?: string }).runnerVersion ?? ""));
  }
  return out;
}

async function setPoolVersion(version: string): Promise<void> {
  await fleet.editPolicy((p) => {
    const pools = p.pools as Record<string, Record<string, unknown>>;
    pools[POOL] = { ...pools[POOL], runnerVersion: version, upgrade: { maxUnavailable: 1 } };
  });
}

interface DriftJson {
  versionDrift: { pool: string; laneId: string; have: string; want: string; status: string }[];
  actions: { kind: string }[];
  warnings: { code: string }[];
}

/** Keeps `n` jobs queued or running until stopped; returns every job id it created. */
function jobStream(n: number): { stop: () => Promise<number[]> } {
  const ids: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const jobs = await fleet.github.control.listJobs();
      const open = jobs.filter((j) => ids.includes(j.id) && j.status !== "completed").length;
      for (let i = open; i < n; i++) ids.push((await fleet.github.control.createJob(SCOPE, { labels: [LABEL], durationMs: JOB_MS })).id);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return ids;
    },
  };
}

/** Samples GitHub while `work` runs: the most lanes carrying lk-draining (out of service) at the same time. */
async function maxDrainingDuring<T>(work: Promise<T>): Promise<{ value: T; maxDraining: number }> {
  let done = false;
  let maxDraining = 0;
  const sampler = (async () => {
    while (!done) {
      const n = (await managedRunners(fleet)).filter((r) => r.labels.includes("lk-draining") || r.status !== "online").length;
      maxDraining = Math.max(maxDraining, n);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    return { value: await work, maxDraining };
  } finally {
    done = true;
    await sampler;
  }
}

/** `apply` until the plan shows no lane of the pool on another version; returns the applies run. */
async function applyUntilNoDrift(max = 3 * LANES): Promise<number> {
  for (let i = 1; i <= max; i++) {
    const plan = (await planJson(fleet)) as unknown as DriftJson;
    if (plan.versionDrift.filter((d) => d.pool === POOL).length === 0) return i - 1;
    await applyOk(fleet);
  }
  throw new Error(`lanes still drift after ${max} applies:\n${await fleetState(fleet)}`);
}

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 3 },
      { hostId: "build02", runtime: "systemd", capacity: 3 },
    ],
    pools: { [POOL]: { backend: "systemd", labels: ["linux", LABEL] } },
    lanes: [{ scope: SCOPE, pool: POOL, count: LANES, hosts: ["build01", "build02"] }],
    handmade: { container: false },
  });
  await applyOk(fleet);
  await waitManagedOnline(fleet, LANES);
});

afterAll(async () => {
  await fleet?.stop();
});

describe("rolling runner upgrade", () => {
  it("latest follows a version the emulator publishes: apply rolls the lanes one at a time with jobs running, none cancelled", async () => {
    await setPoolVersion("latest");
    // GitHub lists the fleet's version: nothing to do.
    expect(((await planJson(fleet)) as unknown as DriftJson).versionDrift).toEqual([]);

    await fleet.github.control.publishRunnerVersion(NEW_VERSION);
    const plan = (await planJson(fleet)) as unknown as DriftJson;
    expect(plan.versionDrift).toHaveLength(LANES);
    expect(plan.versionDrift.every((d) => d.have === FLEET_RUNNER_VERSION && d.want === NEW_VERSION)).toBe(true);
    expect(plan.versionDrift.filter((d) => d.status === "upgrade")).toHaveLength(1);
    expect(plan.actions.filter((a) => a.kind === "upgrade")).toHaveLength(1);

    const stream = jobStream(3);
    // Let jobs occupy lanes before the rollout starts: busy lanes must be waited for, not killed.
    await eventually(async () => (await managedRunners(fleet)).filter((r) => r.busy).length >= 2, "jobs running on the lanes");
    const { value: applies, maxDraining } = await maxDrainingDuring(applyUntilNoDrift());
    const jobIds = await stream.stop();

    expect(applies).toBeGreaterThanOrEqual(LANES);
    expect(maxDraining).toBeLessThanOrEqual(1);
    const versions = await hostVersions();
    expect([...versions.values()]).toEqual(Array(LANES).fill(NEW_VERSION));
    // GitHub saw each runner reconnect with the new version.
    const runners = await waitManagedOnline(fleet, LANES);
    expect(runners.map((r) => (r as { version?: string | null }).version)).toEqual(Array(LANES).fill(NEW_VERSION));
    await expectJobsSucceeded(fleet, jobIds);

    const audit = await auditChain(fleet.auditPath);
    expectCompleteOperations(audit);
    const ups = audit.filter((r) => r.action === "upgrade" && r.phase === "succeeded");
    expect(ups).toHaveLength(LANES);
    const steps = audit.filter((r) => r.action === "upgrade-step" && r.phase === "succeeded").map((r) => (r.details as { step: string }).step);
    expect(steps.filter((s) => s === "send-upgrade")).toHaveLength(LANES);
    expect(steps.filter((s) => s === "verify-upgraded")).toHaveLength(LANES);
    await expectUnmanagedUntouched(fleet);
  });

  it("an upgrade whose archive fails its checksum is rolled back, the lane marked needs-attention and the rollout halted", async () => {
    // GitHub now lists BAD_VERSION only (so the rollback's old version comes with no download: the agent uses the
    // copy it verified), and advertises a checksum its archive does not match.
    await fleet.github.control.setRunnerReleaseFaults({ wrongChecksum: true });
    await fleet.github.control.publishRunnerVersion(BAD_VERSION);
    const stream = jobStream(2);
    const { cli, report } = await apply(fleet);
    const jobIds = await stream.stop();
    await fleet.github.control.setRunnerReleaseFaults({ wrongChecksum: false });
    expect(cli.code, `${cli.stderr}\n${cli.stdout.slice(-4000)}`).toBe(8); // NEEDS_ATTENTION: the lane is left needs-attention, nothing was killed
    const failed = report!.outcomes.find((o) => o.kind === "upgrade")!;
    expect(failed.status).toBe("needs-attention");
    expect(failed.recovery).toContain("RUNNER_CHECKSUM_MISMATCH");
    expect(failed.recovery).toContain(`rolled back to runner ${NEW_VERSION}, verified, and put back in service`);
    expect(failed.recovery).toContain(`lanekeeper lanes release ${failed.laneId}`);

    // Back on the old version and in service; nothing else moved.
    const versions = await hostVersions();
    expect(versions.get(failed.laneId)).toBe(NEW_VERSION);
    expect([...versions.values()]).toEqual(Array(LANES).fill(NEW_VERSION));
    await waitManagedOnline(fleet, LANES);
    const status = await fleet.lanekeeper(["lanes", "show", failed.laneId, "--json"]);
    expect(JSON.stringify(status.json)).toContain("UPGRADE_ROLLED_BACK");

    const plan = (await planJson(fleet)) as unknown as DriftJson;
    expect(plan.versionDrift.every((d) => d.want === BAD_VERSION)).toBe(true);
    expect(plan.warnings.map((w) => w.code)).toContain("UPGRADE_HALTED");
    expect(plan.actions.filter((a) => a.kind === "upgrade")).toEqual([]);
    expect(new Set(plan.versionDrift.map((d) => d.status))).toEqual(new Set(["halted"]));
    await expectJobsSucceeded(fleet, jobIds);

    const audit = await auditChain(fleet.auditPath);
    expectCompleteOperations(audit);
    expect(audit.some((r) => r.action === "upgrade-step" && r.phase === "succeeded" && (r.details as { step: string }).step === "rollback")).toBe(true);
  });

  it("the runbook's 'roll back a runner version by hand' pins the old version, releases the lane and converges", async () => {
    const proc = await loadProcedure("runner-version-rollback");
    const preamble = setVariables(proc, { policy: fleet.policyPath, pool: POOL, old_version: NEW_VERSION });
    // `lanekeeper` on PATH as an operator has it: the fleet's coordinator, its credentials in the environment.
    const bin = join(fleet.dir, "operator-bin-coordinator");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "lanekeeper"), `#!/bin/sh\nexec '${process.execPath}' '${COORDINATOR_BIN}' "$@"\n`);
    await chmod(join(bin, "lanekeeper"), 0o755);
    const env = { ...process.env, ...fleet.coordinatorEnv, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` };
    const stateFile = join(fleet.dir, "runbook-runner-version-rollback.state");
    for (let i = 0; i < proc.steps.length; i++) {
      const r = await runCommand("bash", ["-c", stepScript(proc, preamble, i, stateFile)], { env, timeoutMs: 600_000 });
      expect(r.code, `${proc.steps[i]!.title}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    }
    const plan = (await planJson(fleet)) as unknown as DriftJson;
    expect(plan.versionDrift).toEqual([]);
    expect(plan.warnings.map((w) => w.code)).not.toContain("UPGRADE_HALTED");
    const list = await fleet.lanekeeper(["lanes", "list", "--pool", POOL, "--state", "needs-attention", "--json"]);
    expect((list.json as { lanes: unknown[] }).lanes).toEqual([]);
    expect([...(await hostVersions()).values()]).toEqual(Array(LANES).fill(NEW_VERSION));
    await waitManagedOnline(fleet, LANES);
  });

  it("a version that does not start is rolled back to the old one, from the copy the host verified, with jobs running", async () => {
    await fleet.github.control.publishRunnerVersion(BROKEN_VERSION, { broken: true });
    await setPoolVersion(BROKEN_VERSION);
    const stream = jobStream(2);
    const { cli, report } = await apply(fleet);
    const jobIds = await stream.stop();
    expect(cli.code, `${cli.stderr}\n${cli.stdout.slice(-4000)}`).toBe(8);
    const failed = report!.outcomes.find((o) => o.kind === "upgrade")!;
    expect(failed.status).toBe("needs-attention");
    expect(failed.failedStep).toBe("verify-upgraded");
    expect(failed.recovery).toContain(`rolled back to runner ${NEW_VERSION}, verified, and put back in service`);

    expect([...(await hostVersions()).values()]).toEqual(Array(LANES).fill(NEW_VERSION));
    const runners = await waitManagedOnline(fleet, LANES);
    expect(runners.map((r) => (r as { version?: string | null }).version)).toEqual(Array(LANES).fill(NEW_VERSION));
    const status = await fleet.lanekeeper(["lanes", "show", failed.laneId, "--json"]);
    expect(JSON.stringify(status.json)).toContain("UPGRADE_ROLLED_BACK");
    await expectJobsSucceeded(fleet, jobIds);
    expectCompleteOperations(await auditChain(fleet.auditPath));
    await expectUnmanagedUntouched(fleet);
  });
});
