#!/usr/bin/env node
// End-to-end benchmark (`npm run bench:e2e`, after `npm run build`): a real fleet of three hosts (two systemd
// hosts, each its own systemd sandbox, and one podman host), 30 lanes.
//
//   apply_to_online_s  from `lanekeeper apply --yes` until GitHub shows all 30 lanes online with their labels
//   remove_all_s       from scaling the policy to zero until no lanekeeper registration, unit or container is left
//   jobs_cancelled     jobs cancelled or lost while the lanes were removed under load (target: 0)
//
// Progress goes to stderr; stdout gets exactly one JSON line at the end:
//   {"lanes": 30, "apply_to_online_s": …, "remove_all_s": …, "jobs_cancelled": …}
// Exit 0 when the run completed (whatever the figures), 1 when a step failed (the JSON line then has nulls for
// what was not measured), 2 when the coordinator CLI lacks a command the benchmark needs.
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { startFleet, runCommand } = await import(join(root, "test/harness/dist/index.js"));

const LANES = 30;
const SCOPE = "acme/api";
const HOSTS = [
  { hostId: "build01", runtime: "systemd", capacity: 10 },
  { hostId: "build02", runtime: "systemd", capacity: 10 },
  { hostId: "build03", runtime: "container", capacity: 10 },
];
const JOBS_DURING_REMOVE = 10;
const t0 = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
const result = { lanes: LANES, apply_to_online_s: null, remove_all_s: null, jobs_cancelled: null };
let exitCode = 0;

const managed = async (fleet) => (await fleet.github.control.listRunners()).filter((r) => r.labels.includes("lk-managed"));

async function waitFor(what, probe, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    const v = await probe();
    if (v.done) return;
    if (Date.now() - lastLog > 5000) {
      log(`${what}: ${v.progress}`);
      lastLog = Date.now();
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${v.progress})`);
    await delay(250);
  }
}

/** `lanekeeper apply --yes` until the plan is empty (scale-down is rate-limited per run); returns the runs. */
async function applyUntilEmpty(fleet, extra) {
  for (let run = 1; run <= 40; run++) {
    const r = await fleet.lanekeeper(["apply", "--yes", "--json", ...extra]);
    if (r.code !== 0) throw new Error(`apply exited ${r.code}: ${r.stderr.slice(-2000)}`);
    const done = (r.json?.outcomes ?? []).length;
    log(`apply run ${run}: ${done} action(s)`);
    const plan = await fleet.lanekeeper(["plan", "--json"]);
    if ((plan.json?.actions ?? []).filter((a) => a.kind !== "update-record").length === 0) return run;
  }
  throw new Error("the plan was not empty after 40 apply runs");
}

let fleet;
try {
  log("starting the fleet (nats-server, GitHub emulator, 3 agents: 2 systemd sandboxes, 1 podman)");
  fleet = await startFleet({
    agents: HOSTS.map((h) => ({ ...h, control: { maxLanes: 50 } })),
    pools: {
      "linux-x64": { backend: "systemd", labels: ["lanes-systemd"] },
      "linux-container": { backend: "container", labels: ["lanes-container"] },
    },
    lanes: [
      { scope: SCOPE, pool: "linux-x64", count: 20, hosts: ["build01", "build02"] },
      { scope: SCOPE, pool: "linux-container", count: 10, hosts: ["build03"] },
    ],
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 300_000 },
    log,
  });
  const help = await fleet.lanekeeper(["--help"]);
  if (!/^\s+apply\b/m.test(help.stdout)) {
    log("`lanekeeper apply` is not in this build of the coordinator CLI: nothing to measure");
    exitCode = 2;
  } else {
    // ---- apply → all online
    log(`lanekeeper apply --yes: ${LANES} lanes`);
    const a0 = Date.now();
    const createRuns = await applyUntilEmpty(fleet, []);
    await waitFor(
      "lanes online",
      async () => {
        const on = (await managed(fleet)).filter((r) => r.status === "online" && !r.labels.includes("lk-draining")).length;
        return { done: on >= LANES, progress: `${on}/${LANES} online` };
      },
      900_000,
    );
    result.apply_to_online_s = Number(((Date.now() - a0) / 1000).toFixed(2));
    log(`all ${LANES} lanes online after ${result.apply_to_online_s} s (${createRuns} apply run(s))`);

    // ---- remove all, with jobs running on the lanes
    const jobIds = [];
    for (let i = 0; i < JOBS_DURING_REMOVE; i++) {
      const labels = i % 3 === 2 ? ["lanes-container"] : ["lanes-systemd"];
      jobIds.push((await fleet.github.control.createJob(SCOPE, { labels, durationMs: 4000 + (i % 5) * 1000 })).id);
    }
    await waitFor(
      "jobs to start",
      async () => {
        const running = (await fleet.github.control.listJobs("in_progress")).filter((j) => jobIds.includes(j.id)).length;
        return { done: running >= Math.min(5, JOBS_DURING_REMOVE), progress: `${running} running` };
      },
      120_000,
    );
    await fleet.editPolicy((doc) => {
      for (const l of doc.lanes) l.count = 0;
    });
    log(`policy scaled to 0; removing ${LANES} lanes while ${JOBS_DURING_REMOVE} jobs run`);
    const r0 = Date.now();
    // More removals per plan than the cautious default, if this build has the option.
    const probe = await fleet.lanekeeper(["apply", "--help"]);
    const extra = /--max-removals/.test(probe.stdout) ? ["--max-removals", String(LANES)] : [];
    const removeRuns = await applyUntilEmpty(fleet, extra);
    await waitFor(
      "lanes gone",
      async () => {
        const left = (await managed(fleet)).length;
        let units = 0;
        for (const a of fleet.agents) {
          if (a.sandbox) units += (await readdir(a.sandbox.unitDir)).filter((f) => f.startsWith("lanekeeper-lane-")).length;
        }
        const ps = await runCommand("podman", ["ps", "-a", "--filter", "label=dev.lanekeeper.host=build03", "--format", "{{.Names}}"]);
        const containers = ps.stdout.split("\n").filter((n) => n.startsWith("lanekeeper-lane-")).length;
        return { done: left + units + containers === 0, progress: `${left} registrations, ${units} units, ${containers} containers left` };
      },
      900_000,
    );
    result.remove_all_s = Number(((Date.now() - r0) / 1000).toFixed(2));
    log(`all lanes removed after ${result.remove_all_s} s (${removeRuns} apply run(s))`);

    await waitFor(
      "jobs to finish",
      async () => {
        const jobs = (await fleet.github.control.listJobs()).filter((j) => jobIds.includes(j.id));
        const done = jobs.filter((j) => j.status === "completed").length;
        return { done: done === jobIds.length, progress: `${done}/${jobIds.length} completed` };
      },
      300_000,
    );
    const jobs = (await fleet.github.control.listJobs()).filter((j) => jobIds.includes(j.id));
    result.jobs_cancelled = jobs.filter((j) => j.conclusion === "cancelled" || j.conclusion === "failure").length;
    log(`jobs: ${jobs.filter((j) => j.conclusion === "success").length} succeeded, ${result.jobs_cancelled} cancelled or lost`);
    const touched = await fleet.handmade.verifyUntouched();
    if (touched.length > 0) {
      log(`INVARIANT FAILED: unmanaged runners touched: ${touched.join("; ")}`);
      exitCode = 1;
    }
  }
} catch (e) {
  log(`benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  exitCode = 1;
} finally {
  if (fleet) {
    log("stopping the fleet");
    await fleet.stop();
  }
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(exitCode);
