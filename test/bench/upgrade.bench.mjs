#!/usr/bin/env node
// Rolling-upgrade benchmark (`npm run bench:upgrade`, after `npm run build`): a real fleet of three systemd hosts
// (each its own systemd sandbox), 12 lanes of one pool, a steady stream of jobs. The GitHub emulator publishes a
// new runner release, the pool's pinned version is changed to it, and `lanekeeper apply` runs until no lane runs
// the old version, while the jobs keep coming (each agent fetches and verifies the release from the signed intent).
//
//   upgrade_s                          from the policy change until every lane's host reports the new version
//   jobs                               jobs queued while the upgrade ran
//   jobs_cancelled                     of those, jobs cancelled, failed or lost (target: 0)
//   queue_wait_s_p95_during_upgrade    p95 of (started − queued) over those jobs (GitHub's timestamps, 1 s resolution)
//
// Progress goes to stderr; stdout gets a table, then exactly one JSON line at the end:
//   {"lanes": 12, "upgrade_s": …, "jobs": …, "jobs_cancelled": …, "queue_wait_s_p95_during_upgrade": …}
// Exit 0 when the run completed (whatever the figures), 1 when a step failed (the JSON line then has nulls for what
// was not measured).
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { startFleet, FLEET_RUNNER_VERSION } = await import(join(root, "test/harness/dist/index.js"));

const LANES = 12;
const SCOPE = "acme/api";
const POOL = "linux-x64";
const LABEL = "lanes-systemd";
const NEW_VERSION = "2.337.0";
/** Jobs kept queued or running at any time, each this long: the lanes are busy most of the time. */
const JOBS_IN_FLIGHT = 8;
const JOB_MS = 5000;
const MAX_UNAVAILABLE = 1;
const HOSTS = ["build01", "build02", "build03"].map((hostId) => ({ hostId, runtime: "systemd", capacity: 4 }));
const t0 = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
const result = { lanes: LANES, upgrade_s: null, jobs: null, jobs_cancelled: null, queue_wait_s_p95_during_upgrade: null };
let exitCode = 0;
let applies = 0;

const managed = async (fleet) => (await fleet.github.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lk-lane-")));

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

/** What the hosts report their lanes run: version → count. */
async function versions(fleet) {
  const out = new Map();
  for (const a of fleet.agents) {
    for (const l of (await a.status()).lanes ?? []) out.set(l.runnerVersion ?? "", (out.get(l.runnerVersion ?? "") ?? 0) + 1);
  }
  return out;
}

function p95(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)];
}

let fleet;
try {
  log("starting the fleet (nats-server, GitHub emulator, 3 agents in systemd sandboxes)");
  fleet = await startFleet({
    agents: HOSTS.map((h) => ({ ...h, control: { maxLanes: 50 } })),
    pools: { [POOL]: { backend: "systemd", labels: [LABEL] } },
    lanes: [{ scope: SCOPE, pool: POOL, count: LANES, hosts: HOSTS.map((h) => h.hostId) }],
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 300_000 },
    log,
  });
  for (let run = 1; run <= 10; run++) {
    const r = await fleet.lanekeeper(["apply", "--yes", "--json"]);
    if (r.code !== 0) throw new Error(`apply exited ${r.code}: ${r.stderr.slice(-2000)}`);
    const on = (await managed(fleet)).filter((x) => x.status === "online").length;
    if (on >= LANES) break;
  }
  await waitFor("lanes online", async () => {
    const on = (await managed(fleet)).filter((r) => r.status === "online" && !r.labels.includes("lk-draining")).length;
    return { done: on >= LANES, progress: `${on}/${LANES} online` };
  }, 600_000);

  // GitHub publishes the new release (a real tarball of the runner emulator reporting it); the agents fetch it
  // through the signed upgrade intents and verify its checksum. Nothing is staged on the hosts.
  await fleet.github.control.publishRunnerVersion(NEW_VERSION);

  // A steady stream of jobs, before and throughout the upgrade.
  const ids = [];
  let streaming = true;
  const stream = (async () => {
    while (streaming) {
      const open = (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id) && j.status !== "completed").length;
      for (let i = open; i < JOBS_IN_FLIGHT; i++) ids.push((await fleet.github.control.createJob(SCOPE, { labels: [LABEL], durationMs: JOB_MS })).id);
      await delay(250);
    }
  })();
  await delay(2 * JOB_MS);

  log(`pool ${POOL}: runnerVersion ${FLEET_RUNNER_VERSION} → ${NEW_VERSION} (upgrade.maxUnavailable ${MAX_UNAVAILABLE}), ${JOBS_IN_FLIGHT} jobs in flight`);
  const u0 = Date.now();
  const idsBefore = new Set(ids);
  await fleet.editPolicy((doc) => {
    doc.pools[POOL] = { ...doc.pools[POOL], runnerVersion: NEW_VERSION, upgrade: { maxUnavailable: MAX_UNAVAILABLE } };
  });
  for (;;) {
    const v = await versions(fleet);
    if ((v.get(NEW_VERSION) ?? 0) >= LANES) break;
    if (applies >= 4 * LANES) throw new Error(`not converged after ${applies} apply runs: ${JSON.stringify([...v])}`);
    const r = await fleet.lanekeeper(["apply", "--yes", "--json"]);
    applies++;
    if (r.code !== 0) throw new Error(`apply exited ${r.code}: ${r.stderr.slice(-2000)}`);
    log(`apply ${applies}: ${(r.json?.outcomes ?? []).filter((o) => o.kind === "upgrade").length} upgrade(s); lanes on ${NEW_VERSION}: ${(await versions(fleet)).get(NEW_VERSION) ?? 0}/${LANES}`);
  }
  result.upgrade_s = Number(((Date.now() - u0) / 1000).toFixed(2));
  const u1 = Date.now();
  log(`every lane on ${NEW_VERSION} after ${result.upgrade_s} s (${applies} apply run(s))`);
  streaming = false;
  await stream;

  // The jobs of the upgrade window: queued before it ended and not finished before it began.
  await waitFor("jobs to finish", async () => {
    const open = (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id) && j.status !== "completed").length;
    return { done: open === 0, progress: `${open} still open` };
  }, 300_000);
  const jobs = (await fleet.github.control.listJobs()).filter(
    (j) => ids.includes(j.id) && Date.parse(j.createdAt) <= u1 && (!idsBefore.has(j.id) || Date.parse(j.completedAt ?? "") >= u0),
  );
  result.jobs = jobs.length;
  result.jobs_cancelled = jobs.filter((j) => j.conclusion !== "success").length;
  const waits = jobs.filter((j) => j.startedAt !== null).map((j) => (Date.parse(j.startedAt) - Date.parse(j.createdAt)) / 1000);
  const q = p95(waits);
  result.queue_wait_s_p95_during_upgrade = q === null ? null : Number(q.toFixed(2));
  log(`jobs during the upgrade: ${result.jobs}, ${result.jobs_cancelled} cancelled or lost, queue wait p95 ${result.queue_wait_s_p95_during_upgrade} s`);
  const touched = await fleet.handmade.verifyUntouched();
  if (touched.length > 0) {
    log(`INVARIANT FAILED: unmanaged runners touched: ${touched.join("; ")}`);
    exitCode = 1;
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
const rows = [
  ["lanes (3 hosts, maxUnavailable 1)", result.lanes],
  ["apply runs", applies],
  ["upgrade (s)", result.upgrade_s],
  ["jobs during the upgrade", result.jobs],
  ["jobs cancelled / failed / lost", result.jobs_cancelled],
  ["queue wait p95 during the upgrade (s)", result.queue_wait_s_p95_during_upgrade],
  ["load average (1/5/15 min) at the end", loadavg().map((x) => x.toFixed(2)).join(" ")],
];
const w = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`rolling runner upgrade ${FLEET_RUNNER_VERSION} → ${NEW_VERSION}\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v ?? "-"}`).join("\n")}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(exitCode);
