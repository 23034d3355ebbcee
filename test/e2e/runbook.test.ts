// Executable documentation: the manual rollbacks of docs/runbook.md (sections 2 and 3), run step by step exactly as
// written, on a real fleet whose lane is running a job: a systemd lane (commands inside the host's systemd sandbox)
// and a container lane (commands on the host, with podman). Only the variables the operator sets at the top of a
// procedure are replaced (GitHub API base and token, scope, lane, the agent config's paths and user). The procedure
// must wait for the job (it completes successfully per the emulator, before anything is stopped), its wait must
// see the live Runner.Worker, and afterwards the host and GitHub must be as the runbook says: unit or container
// gone, registration gone, lane directory gone, hold released, the agent still running, nothing unmanaged touched.
import { randomBytes } from "node:crypto";
import { access, chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AGENT_BIN, runCommand, type CommandResult, type Fleet, type RunnerView } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyOk, e2eFleet, eventually, expectJobsSucceeded, expectUnmanagedUntouched, laneContainers, managedRunners, planJson, waitManagedOnline } from "./e2e-fixture.js";
import { loadProcedure, setVariables, stepScript, type RunbookProcedure } from "./runbook-procedure.js";

const SCOPE = "acme/api";
/** The container host's id, unique per run: lane containers share the machine's one podman store. */
const CT = `build03-${randomBytes(3).toString("hex")}`;
/** Long enough that the hold, drain and the first look at the worker happen while the job runs, even when loaded. */
const JOB_MS = 60_000;
const STEP_TIMEOUT_MS = 300_000;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 2 },
      { hostId: CT, runtime: "container", capacity: 2 },
    ],
    pools: {
      "linux-x64": { backend: "systemd", labels: ["linux", "lanes-systemd"] },
      "linux-container": { backend: "container", labels: ["linux", "lanes-container"] },
    },
    lanes: [
      { scope: SCOPE, pool: "linux-x64", count: 1, hosts: ["build01"] },
      { scope: SCOPE, pool: "linux-container", count: 1, hosts: [CT] },
    ],
    handmade: { container: false },
  });
  await applyOk(fleet);
  await waitManagedOnline(fleet, 2);
});

afterAll(async () => {
  await fleet?.stop();
});

/** Where the operator's commands run: inside the host's sandbox (systemd agents) or on this machine. */
type Shell = (script: string, env: NodeJS.ProcessEnv) => Promise<CommandResult>;

/** A `lanekeeper-agent` on PATH for the procedure, talking to this host's agent (its config, as `/etc/lanekeeper/agent.yaml` would be). */
async function operatorPath(hostId: string): Promise<string> {
  const bin = join(fleet.dir, `operator-bin-${hostId}`);
  await mkdir(bin, { recursive: true });
  const cfg = fleet.agent(hostId).configPath;
  await writeFile(join(bin, "lanekeeper-agent"), `#!/bin/sh\nexec '${process.execPath}' '${AGENT_BIN}' "$@" --config '${cfg}'\n`);
  await chmod(join(bin, "lanekeeper-agent"), 0o755);
  return `${bin}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
}

/** Queues a job for `label` and waits until a lane runs it. */
async function busyLane(label: string): Promise<{ jobId: number; lane: RunnerView }> {
  const { id } = await fleet.github.control.createJob(SCOPE, { labels: [label], durationMs: JOB_MS });
  const job = await eventually(async () => {
    const j = await fleet.github.control.getJob(id);
    return j.status === "in_progress" ? j : undefined;
  }, `job ${id} to start`);
  const lane = (await managedRunners(fleet)).find((r) => r.id === job.runnerId);
  expect(lane).toBeDefined();
  return { jobId: id, lane: lane! };
}

/** The `job_running` function the procedure's wait step defines, run once now: exit 0 means "a job runs". */
function probeScript(proc: RunbookProcedure, preamble: string): string {
  const wait = proc.steps.find((s) => s.script.includes("job_running() {"));
  const fn = wait && /^job_running\(\) \{\n[\s\S]*?\n\}$/m.exec(wait.script)?.[0];
  if (!fn) throw new Error(`procedure ${proc.name} defines no job_running() in a step`);
  return ["set -uo pipefail", preamble, fn, "job_running"].join("\n");
}

/**
 * Runs the procedure step by step. Before the wait step the job must still be running and the procedure's own
 * check must see it; once the wait step returns, the job must have completed successfully (nothing is stopped
 * before). Returns the steps' titles.
 */
async function runProcedure(name: string, values: Record<string, string>, shell: Shell, env: NodeJS.ProcessEnv, jobId: number): Promise<string[]> {
  const proc = await loadProcedure(name);
  const preamble = setVariables(proc, values);
  const stateFile = join(fleet.dir, `runbook-${name}.state`);
  const done: string[] = [];
  const waitIndex = proc.steps.findIndex((s) => s.script.includes("while job_running"));
  expect(waitIndex, "the procedure has a step that waits for the job").toBeGreaterThan(0);
  for (let i = 0; i < proc.steps.length; i++) {
    const step = proc.steps[i]!;
    if (i === waitIndex) {
      const before = await fleet.github.control.getJob(jobId);
      expect(before.status, `job ${jobId} already ${before.status} before "${step.title}": make JOB_MS longer`).toBe("in_progress");
      const probe = await shell(probeScript(proc, preamble), env);
      const after = await fleet.github.control.getJob(jobId);
      // The check may only say "no job" if the job really ended meanwhile.
      if (after.status === "in_progress") expect(probe.code, `job_running missed the live Runner.Worker\n${probe.stderr}`).toBe(0);
    }
    const r = await shell(stepScript(proc, preamble, i, stateFile), env);
    expect(r.code, `step "${step.title}" of ${name} failed\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    done.push(step.title);
    if (i === waitIndex) {
      const j = await fleet.github.control.getJob(jobId);
      expect({ status: j.status, conclusion: j.conclusion }, `after "${step.title}"`).toEqual({ status: "completed", conclusion: "success" });
    }
  }
  return done;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The coordinator notices as the runbook says: the record without lane nor registration is marked an orphan. */
async function expectOrphanMarked(laneId: string): Promise<void> {
  await eventually(async () => {
    const plan = await planJson(fleet);
    return plan.actions.some((a) => a.kind === "mark-orphan" && a.laneId === laneId);
  }, `a mark-orphan action for ${laneId}`, 120_000, 3000);
}

describe("runbook: manual rollback of a systemd lane (section 2)", () => {
  it("waits for the running job, then leaves no unit, registration, lane directory or hold", async () => {
    const agent = fleet.agent("build01");
    const sd = agent.sandbox!;
    const { jobId, lane } = await busyLane("lanes-systemd");
    // The fleet's agents run their lanes as root (runAsUser: root), which config.sh refuses without this; on a
    // real host the runner user is lanekeeper-runner and nothing needs it.
    const env = { ...process.env, PATH: await operatorPath("build01"), GITHUB_TOKEN: fleet.github.token, RUNNER_ALLOW_RUNASROOT: "1" };
    const shell: Shell = (script, e) => sd.exec("/bin/bash", ["-c", script], { env: e, timeoutMs: STEP_TIMEOUT_MS });

    const steps = await runProcedure(
      "systemd-rollback",
      { api: fleet.github.apiUrl, repo: SCOPE, lane: lane.name, lane_root: agent.laneRoot, unitdir: sd.unitDir, runner_user: "root" },
      shell,
      env,
      jobId,
    );
    expect(steps.length).toBeGreaterThanOrEqual(8);

    await expectJobsSucceeded(fleet, [jobId]);
    const unit = `lanekeeper-lane-${lane.name}.service`;
    expect(await exists(join(sd.unitDir, unit))).toBe(false);
    expect((await sd.unitProperties(unit, ["LoadState"])).LoadState).toBe("not-found");
    expect((await fleet.github.control.listRunners()).map((r) => r.id)).not.toContain(lane.id);
    expect(await exists(join(agent.laneRoot, lane.name))).toBe(false);
    expect(await exists(join(agent.stateDir, "holds", `${lane.name}.json`))).toBe(false);
    expect(agent.running).toBe(true);
    await expectUnmanagedUntouched(fleet);
    await expectOrphanMarked(lane.name);
  });
});

describe("runbook: manual rollback of a container lane (section 3)", () => {
  it("waits for the running job, then leaves no container, registration, lane directory or hold", async () => {
    const agent = fleet.agent(CT);
    const { jobId, lane } = await busyLane("lanes-container");
    expect(await laneContainers(CT)).toEqual([`lanekeeper-lane-${lane.name}`]);
    const env = { ...process.env, PATH: await operatorPath(CT), GITHUB_TOKEN: fleet.github.token };
    const shell: Shell = (script, e) => runCommand("/bin/bash", ["-c", script], { env: e, timeoutMs: STEP_TIMEOUT_MS });

    const steps = await runProcedure(
      "container-rollback",
      { api: fleet.github.apiUrl, repo: SCOPE, lane: lane.name, lane_root: agent.laneRoot, engine: "podman" },
      shell,
      env,
      jobId,
    );
    expect(steps.length).toBeGreaterThanOrEqual(8);

    await expectJobsSucceeded(fleet, [jobId]);
    expect(await laneContainers(CT)).toEqual([]);
    expect((await fleet.github.control.listRunners()).map((r) => r.id)).not.toContain(lane.id);
    expect(await exists(join(agent.laneRoot, lane.name))).toBe(false);
    expect(await exists(join(agent.stateDir, "holds", `${lane.name}.json`))).toBe(false);
    expect(agent.running).toBe(true);
    await expectUnmanagedUntouched(fleet);
    await expectOrphanMarked(lane.name);
  });
});
