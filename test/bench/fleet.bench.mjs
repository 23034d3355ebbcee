#!/usr/bin/env node
// Fleet-scale benchmark (`npm run bench:fleet`, after `npm run build`): 1,000 simulated hosts, 20,000 lanes over
// 500 repositories, and the real coordinator.
//
// The simulation (test/support/src/fleet-sim, docs/fleet-simulation.md): each simulated host is the real agent
// (AgentDaemon: keys, audit chain, lane manager, journal, ownership markers, health loop, inventory; and its intake:
// envelope verification, replay store, trusted key set, allowlist, ownership checks, signed results and signed
// inventories) on its own NATS login with per-host permissions, over a real nats-server, with the in-memory lane
// runtime whose runners register and go online on the GitHub emulator through its runner protocol. Many hosts run
// in each of a few worker processes. Keys are made at run time (`lanekeeper-agent init` for every host,
// `lanekeeper keys` for the coordinator) in a temp directory removed at the end.
//
//   1. create   `lanekeeper apply --yes --max-creates <lanes>` from an empty fleet until every lane is online
//               (persistent lanes: one registration token per scope, reused); intents/s = intents the agents
//               accepted / create time
//   2. steady   `lanekeeper serve` reconciling every LK_FLEET_INTERVAL_MS over the converged fleet; per cycle its
//               log's observe+plan time, the emulator's REST calls and rate-limit points, and nats-server's
//               messages (in+out) between two cycles (inventories included); the first cycle (cold ETag cache)
//               is left out of the figures
//
// Prints a table, then exactly one JSON line:
//   {"hosts", "lanes", "scopes", "create_all_s", "reconcile_ms_p50", "reconcile_ms_p99", "coordinator_rss_mb",
//    "api_calls_per_reconcile", "rate_points_per_reconcile", "intents_per_s"}
// coordinator_rss_mb is the larger peak (VmHWM) of the apply process and the serve process.
// Targets: reconcile p99 < 2 s, RSS < 512 MB, at most one call per scope and 0 points per steady reconcile.
// Smaller fleets: LK_FLEET_HOSTS / LK_FLEET_LANES / LK_FLEET_SCOPES / LK_FLEET_WORKERS (or --hosts= --lanes=
// --scopes= --workers=), LK_FLEET_RECONCILES (steady cycles measured, default 10). Exit 0 when every lane was created
// and the cycles were measured (whatever the figures), 1 otherwise.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

const root = new URL("../..", import.meta.url).pathname;
const { startFleetSimulation } = await import(join(root, "test/support/dist/index.js"));
const { startGitHubEmulator, startNatsServer } = await import(join(root, "test/harness/dist/index.js"));

const arg = (name, env, dflt) => {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return Number(flag ? flag.slice(name.length + 3) : (process.env[env] ?? dflt));
};
const HOSTS = arg("hosts", "LK_FLEET_HOSTS", 1000);
const LANES = arg("lanes", "LK_FLEET_LANES", 20 * HOSTS);
const SCOPES = arg("scopes", "LK_FLEET_SCOPES", Math.max(1, Math.round(HOSTS / 2)));
const WORKERS = arg("workers", "LK_FLEET_WORKERS", 3);
const RECONCILES = arg("reconciles", "LK_FLEET_RECONCILES", 10);
const INTERVAL_MS = arg("interval", "LK_FLEET_INTERVAL_MS", 5000);
const APPLY_CONCURRENCY = arg("concurrency", "LK_FLEET_APPLY_CONCURRENCY", 64);
// An App installation's primary limit on a large organization; the steady state spends none of it.
const RATE_LIMIT = arg("rate-limit", "LK_FLEET_RATE_LIMIT", 15000);

const t0 = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(7)}s] ${m}\n`);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));

const result = {
  hosts: HOSTS,
  lanes: LANES,
  scopes: SCOPES,
  create_all_s: null,
  reconcile_ms_p50: null,
  reconcile_ms_p99: null,
  coordinator_rss_mb: null,
  api_calls_per_reconcile: null,
  rate_points_per_reconcile: null,
  intents_per_s: null,
};
const extra = {};
let exitCode = 0;

const dir = await mkdtemp(join(process.env.LK_FLEET_DIR ?? tmpdir(), "lk-fleet-bench-"));
let sim;
try {
  log(`fleet: ${HOSTS} hosts, ${LANES} lanes, ${SCOPES} scopes, ${WORKERS} worker processes; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  sim = await startFleetSimulation({
    hosts: HOSTS,
    lanes: LANES,
    scopes: SCOPES,
    workers: WORKERS,
    dir,
    deps: { startGitHubEmulator, startNatsServer },
    applyConcurrency: APPLY_CONCURRENCY,
    reconcileIntervalMs: INTERVAL_MS,
    rateLimitPerHour: RATE_LIMIT,
    log,
  });
  const admin = async () => (await sim.github.control.stats()).byToken.admin ?? { calls: 0, points: 0, notModified: 0 };
  const initial = await sim.workers.stats();
  extra.worker_rss_idle_mb = round(initial.rssMb, 0);

  // ---- 1. create every lane from an empty fleet -------------------------------------------------------------
  const createStart = Date.now();
  const ghBefore = await admin();
  const routesBefore = (await sim.github.control.stats()).byRoute;
  let applyPeak = 0;
  let rounds = 0;
  for (;;) {
    rounds++;
    const r = await sim.cli(["apply", "--yes", "--quiet", "--json", "--max-creates", String(LANES)], { timeoutMs: 3_600_000 });
    applyPeak = Math.max(applyPeak, r.peakRssMb);
    let report;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      report = undefined;
    }
    const outcomes = report?.outcomes ?? [];
    const ok = outcomes.filter((o) => o.status === "succeeded").length;
    const s = await sim.workers.stats();
    log(`apply round ${rounds}: exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s, ${ok}/${outcomes.length} actions succeeded, ${s.online}/${LANES} lanes online, peak RSS ${r.peakRssMb.toFixed(0)} MB`);
    if (r.code !== 0 && outcomes.length === 0) log(`apply stderr: ${r.stderr.trim().slice(-2000)}`);
    if (s.online >= LANES) break;
    if (rounds >= 5) throw new Error(`only ${s.online} of ${LANES} lanes online after ${rounds} apply rounds`);
  }
  const createS = (Date.now() - createStart) / 1000;
  const afterCreate = await sim.workers.stats();
  const ghCreate = await admin();
  result.create_all_s = round(createS, 1);
  result.intents_per_s = round(afterCreate.intents / createS, 1);
  extra.create_api_calls = ghCreate.calls - ghBefore.calls;
  const routesAfter = (await sim.github.control.stats()).byRoute;
  extra.create_calls_by_route = Object.fromEntries(
    Object.entries(routesAfter)
      .map(([route, c]) => [route, c.calls - (routesBefore[route]?.calls ?? 0)])
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]),
  );
  extra.create_rate_points = ghCreate.points - ghBefore.points;
  extra.apply_rounds = rounds;
  extra.apply_peak_rss_mb = round(applyPeak, 0);
  extra.worker_rss_mb = round(afterCreate.rssMb, 0);

  // ---- 2. steady-state reconcile by `lanekeeper serve` ------------------------------------------------------
  const serveLog = join(dir, "serve.log");
  const serve = sim.serve([], { LANEKEEPER_LOG_LEVEL: "info", LANEKEEPER_LOG_FILE: serveLog });
  const cycles = [];
  let seen = 0;
  let prev;
  const deadline = Date.now() + Math.max(600_000, (RECONCILES + 3) * INTERVAL_MS * 10);
  while (cycles.length < RECONCILES + 1 && Date.now() < deadline) {
    await delay(100);
    if (serve.child.exitCode !== null) throw new Error(`lanekeeper serve exited ${serve.child.exitCode}: ${serve.stderr().slice(-2000)}`);
    const lines = (await readFile(serveLog, "utf8").catch(() => ""))
      .split("\n")
      .filter((l) => l.includes('"reconcile cycle"'))
      .map((l) => JSON.parse(l));
    if (lines.length <= seen) continue;
    const gh = await admin();
    const nats = await sim.natsMessages();
    for (const line of lines.slice(seen)) {
      const snap = { line, gh, nats };
      if (prev !== undefined) {
        cycles.push({
          observePlanMs: line.observePlanMs,
          cycleMs: line.cycleMs,
          actions: line.actions,
          calls: gh.calls - prev.gh.calls,
          points: gh.points - prev.gh.points,
          notModified: gh.notModified - prev.gh.notModified,
          natsMsgs: nats.in + nats.out - (prev.nats.in + prev.nats.out),
        });
      } else {
        extra.cold_cycle_ms = line.observePlanMs;
      }
      prev = snap;
    }
    seen = lines.length;
  }
  const steady = cycles.slice(0, RECONCILES);
  if (steady.length < RECONCILES) throw new Error(`only ${steady.length} steady cycles in time`);
  const servePeak = await serve.peakRssMb();
  extra.serve_rss_mb = round(await serve.rssMb(), 0);
  extra.serve_peak_rss_mb = round(servePeak, 0);
  await serve.stop();

  const ms = steady.map((c) => c.observePlanMs);
  const mean = (k) => steady.reduce((a, c) => a + c[k], 0) / steady.length;
  result.reconcile_ms_p50 = pct(ms, 50);
  result.reconcile_ms_p99 = pct(ms, 99);
  result.coordinator_rss_mb = round(Math.max(applyPeak, servePeak), 0);
  result.api_calls_per_reconcile = round(mean("calls"), 1);
  result.rate_points_per_reconcile = round(mean("points"), 1);
  extra.nats_msgs_per_reconcile = round(mean("natsMsgs"), 0);
  extra.steady_actions = Math.max(...steady.map((c) => c.actions));

  console.log(`\nfleet: ${HOSTS} hosts in ${WORKERS} worker processes, ${LANES} lanes, ${SCOPES} scopes (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  console.log(`create: ${result.create_all_s} s for ${LANES} lanes in ${rounds} apply round(s), ${result.intents_per_s} intents/s, ${extra.create_api_calls} API calls, ${extra.create_rate_points} rate-limit points, apply peak RSS ${extra.apply_peak_rss_mb} MB`);
  console.log(`create API calls by route: ${Object.entries(extra.create_calls_by_route).map(([r, n]) => `${r} ${n}`).join(", ")}`);
  console.log(`simulated hosts: ${extra.worker_rss_mb} MB resident over ${WORKERS} workers (${extra.worker_rss_idle_mb} MB before the create)`);
  console.log("\ncycle  observe+plan ms  cycle ms  actions  API calls  points  304s  NATS msgs");
  steady.forEach((c, i) =>
    console.log(
      `${String(i + 1).padStart(5)}  ${String(c.observePlanMs).padStart(15)}  ${String(c.cycleMs).padStart(8)}  ${String(c.actions).padStart(7)}  ${String(c.calls).padStart(9)}  ${String(c.points).padStart(6)}  ${String(c.notModified).padStart(4)}  ${String(c.natsMsgs).padStart(9)}`,
    ),
  );
  const met = (ok) => (ok ? "met" : "MISSED");
  console.log(
    `\ntargets: reconcile p99 ${result.reconcile_ms_p99} ms < 2000 (${met(result.reconcile_ms_p99 < 2000)}), RSS ${result.coordinator_rss_mb} MB < 512 (${met(result.coordinator_rss_mb < 512)}), ` +
      `${result.api_calls_per_reconcile} calls <= ${SCOPES} scopes (${met(result.api_calls_per_reconcile <= SCOPES)}), ${result.rate_points_per_reconcile} points = 0 (${met(result.rate_points_per_reconcile === 0)})`,
  );
  console.log(`also: serve RSS ${extra.serve_rss_mb} MB (peak ${extra.serve_peak_rss_mb}), cold first cycle ${extra.cold_cycle_ms} ms, NATS messages per reconcile interval ${extra.nats_msgs_per_reconcile}`);
} catch (err) {
  exitCode = 1;
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await sim?.stop().catch(() => undefined);
  if (process.env.LK_FLEET_KEEP === undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  else log(`kept ${dir}`);
}
console.log(JSON.stringify(result));
process.exit(exitCode);
