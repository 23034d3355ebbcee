#!/usr/bin/env node
// Coordinator benchmark.
// 1. Plan time for a fleet of 2,000 lanes over 100 scopes and 50 hosts (target < 250 ms): a converged fleet
//    (the steady-state reconcile), a fleet where every scope lost a quarter of its lanes (creates and
//    placement), and one wanting half as many lanes (scale-down choices).
// 2. GitHub API cost of a steady-state reconcile against the real GitHub emulator over HTTP: the same 2,000
//    registrations live in the emulator, and each reconcile lists every scope's runners with conditional
//    requests (target: at most one request per scope, zero rate-limit points once ETags answer 304).
// Prints tables, then exactly one JSON line:
//   {"plan_ms", "lanes", "scopes", "api_calls_per_reconcile", "rate_points_per_reconcile"}
// plan_ms is the median CPU time of one converged plan (CPU time stays meaningful when other processes share
// the machine; the table also shows wall-clock figures). Uses the built packages (builds them when missing or
// stale).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const root = new URL("../..", import.meta.url).pathname;
const coordinatorDist = join(root, "packages/coordinator/dist/index.js");
const harnessDist = join(root, "test/harness/dist/index.js");
const testingDist = join(root, "test/support/dist/index.js");

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}
// tsc -b leaves unchanged outputs alone, so freshness is judged on each project's build info.
const stale = (dist, src) => {
  const info = join(dist, "..", ".tsbuildinfo");
  return !existsSync(dist) || !existsSync(info) || statSync(info).mtimeMs < newestMtime(src);
};
if (
  stale(coordinatorDist, join(root, "packages/coordinator/src")) ||
  stale(harnessDist, join(root, "test/harness/src")) ||
  stale(testingDist, join(root, "test/support/src"))
) {
  console.error("building packages/coordinator, test/harness and test/support ...");
  execFileSync(join(root, "node_modules/.bin/tsc"), ["-b", join(root, "packages/coordinator"), join(root, "test/harness"), join(root, "test/support")], {
    stdio: "inherit",
  });
}
const lk = await import(coordinatorDist);
const { startGitHubEmulator } = await import(harnessDist);
const { steadyState } = await import(testingDist);

const LANES = 2000;
const SCOPES = 100;
const HOSTS = 50;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const RECONCILES = 3;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timePlan(inputs, opts = {}) {
  const { policy, observed, records, nowMs } = inputs;
  for (let i = 0; i < 3; i++) lk.plan(policy, observed, records, { nowMs, ...opts }); // warm-up
  const wall = [];
  const cpu = [];
  let last;
  for (let i = 0; i < RUNS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    last = lk.plan(policy, observed, records, { nowMs, ...opts });
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wallMs: median(wall), cpuMs: median(cpu), plan: last };
}

// ---- 1. plan time ---------------------------------------------------------------------------------------
const steady = steadyState({ lanes: LANES, scopes: SCOPES, hosts: HOSTS });
const converged = timePlan(steady);

// Every scope lost a quarter of its lanes: records, registrations and host lanes gone.
const lost = new Set(steady.records.filter((_, i) => i % 4 === 0).map((r) => r.laneId));
const lostInputs = {
  ...steady,
  records: steady.records.filter((r) => !lost.has(r.laneId)),
  observed: {
    scopes: new Map(
      [...steady.observed.scopes].map(([s, o]) => [s, { ...o, runners: o.runners.filter((r) => !lost.has(r.labels[1]?.name.slice("lk-lane-".length))) }]),
    ),
    inventory: {
      hosts: new Map([...steady.observed.inventory.hosts].map(([h, inv]) => [h, { ...inv, lanes: inv.lanes.filter((l) => !lost.has(l.laneId)) }])),
    },
  },
};
const scaleUp = timePlan(lostInputs, { maxCreates: LANES });

const halfPolicy = { ...steady.policy, lanes: steady.policy.lanes.map((l) => ({ ...l, count: Math.floor(l.count / 2) })) };
const scaleDown = timePlan({ ...steady, policy: halfPolicy }, { maxRemovals: LANES });

console.log(`plan() over ${LANES} lanes, ${SCOPES} scopes, ${HOSTS} hosts (median of ${RUNS} runs)`);
console.log("scenario            wall ms   cpu ms   actions");
const row = (name, r) =>
  console.log(`${name.padEnd(18)}  ${r.wallMs.toFixed(1).padStart(7)}  ${r.cpuMs.toFixed(1).padStart(7)}  ${String(r.plan.actions.length).padStart(8)}`);
row("converged", converged);
row("a quarter lost", scaleUp);
row("half wanted", scaleDown);
if (converged.plan.actions.length !== 0) console.log(`WARNING: the converged fleet planned ${converged.plan.actions.length} action(s)`);

// ---- 2. GitHub cost of a steady-state reconcile -----------------------------------------------------------
const scopes = [...steady.observed.scopes.keys()];
const emu = await startGitHubEmulator({ repos: scopes, rateLimitPerHour: 100_000 });
let calls = 0;
let points = 0;
let notModified = 0;
let reconcileMs = [];
let actions = -1;
try {
  const setup = await emu.control.createToken("setup");
  // Register the steady-state fleet's runners in the emulator with the same names and labels.
  const idMap = new Map();
  const jobs = [];
  for (const [scope, o] of steady.observed.scopes) for (const r of o.runners) jobs.push({ scope, r });
  const t0 = performance.now();
  const worker = async () => {
    for (let j = jobs.shift(); j !== undefined; j = jobs.shift()) {
      const res = await fetch(`${emu.apiUrl}/repos/${j.scope}/actions/runners/generate-jitconfig`, {
        method: "POST",
        headers: { authorization: `token ${setup}`, "content-type": "application/json" },
        body: JSON.stringify({ name: j.r.name, runner_group_id: 1, labels: j.r.labels.map((l) => l.name) }),
      });
      if (res.status !== 201) throw new Error(`registering ${j.r.name}: HTTP ${res.status}`);
      idMap.set(j.r.id, (await res.json()).runner.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  console.log(`\nregistered ${idMap.size} runners in the emulator in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Records and host lanes point at the emulator's runner ids.
  const records = steady.records.map((r) => ({ ...r, runnerId: idMap.get(r.runnerId) }));
  const inventory = {
    hosts: new Map(
      [...steady.observed.inventory.hosts].map(([h, inv]) => [h, { ...inv, lanes: inv.lanes.map((l) => ({ ...l, runnerId: idMap.get(l.runnerId) })) }]),
    ),
  };
  const client = new lk.OctokitGitHubClient({ apiUrl: emu.apiUrl, credential: { kind: "token", token: new lk.RedactedSecret(emu.token) } });
  const adminStats = async () => (await emu.control.stats()).byToken.admin ?? { calls: 0, points: 0, notModified: 0 };

  console.log("reconcile   requests   points   304s   ms (observe + plan)   actions");
  for (let i = 0; i <= RECONCILES; i++) {
    const before = await adminStats();
    const t = performance.now();
    const observedScopes = await lk.observeScopes(client, scopes);
    const nowMs = Date.now();
    // Inventories are fresh as of now.
    const fresh = { hosts: new Map([...inventory.hosts].map(([h, inv]) => [h, { ...inv, receivedAtMs: nowMs }])) };
    const p = lk.plan(steady.policy, { scopes: observedScopes, inventory: fresh }, records, { nowMs });
    const ms = performance.now() - t;
    const after = await adminStats();
    const d = { calls: after.calls - before.calls, points: after.points - before.points, nm: after.notModified - before.notModified };
    console.log(
      `${(i === 0 ? "cold" : `steady ${i}`).padEnd(10)}  ${String(d.calls).padStart(8)}  ${String(d.points).padStart(7)}  ${String(d.nm).padStart(5)}  ${ms.toFixed(0).padStart(20)}  ${String(p.actions.length).padStart(8)}`,
    );
    if (i > 0) {
      calls += d.calls;
      points += d.points;
      notModified += d.nm;
      reconcileMs.push(ms);
      actions = Math.max(actions, p.actions.length);
    }
  }
  const m = client.metrics();
  console.log(`client counters: ${m.requests} requests, ${m.notModified} answered 304, ${m.pointsSpent} points; rate limit left ${client.rateLimit().remaining}`);
} finally {
  await emu.stop();
}

const apiCalls = calls / RECONCILES;
const ratePoints = points / RECONCILES;
console.log(
  `\nsteady state: ${apiCalls} request(s) per reconcile for ${SCOPES} scopes (${(apiCalls / SCOPES).toFixed(2)} per scope), ` +
    `${ratePoints} rate-limit point(s), ${notModified / RECONCILES} answered 304; median reconcile ${median(reconcileMs).toFixed(0)} ms; ` +
    `actions planned: ${actions}`,
);
console.log(`targets: plan < 250 ms (${converged.cpuMs < 250 ? "met" : "MISSED"}), <= 1 request per scope (${apiCalls <= SCOPES ? "met" : "MISSED"}), 0 points (${ratePoints === 0 ? "met" : "MISSED"})`);
console.log(
  JSON.stringify({
    plan_ms: Number(converged.cpuMs.toFixed(1)),
    lanes: LANES,
    scopes: SCOPES,
    api_calls_per_reconcile: apiCalls,
    rate_points_per_reconcile: ratePoints,
  }),
);
