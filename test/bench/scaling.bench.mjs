#!/usr/bin/env node
// Scaling benchmark (`npm run bench:scaling`, after `npm run build`): a bursty, seeded job trace replayed through
// the GitHub emulator against a real fleet (nats-server, two real agents each in its own systemd sandbox), with
// `lanekeeper serve` running and receiving the emulator's `workflow_job` webhooks, 20% of which are dropped.
// The trace runs twice in one run:
//
//   scaling   lanes[].scaling {min: 0, max, idle, scaleDownAfter} on both pools: capacity follows the queue
//   baseline  lanes[].count = max on both pools: a fixed pool sized for the peak
//
// Figures (queue wait = job started − job queued, from the emulator's trace report):
//   queue_wait_s_p50/p95/max   of the scaling run
//   jobs_lost                  jobs of the scaling run never completed, or failed (a runner lost under them)
//   jobs_cancelled             jobs of the scaling run cancelled (a drain never cancels one)
//   idle_lane_minutes          lanes online and not busy, integrated from trace start to the last job's end
//   baseline_idle_lane_minutes the same for the fixed pool
//   peak_lanes                 most lane registrations at once during the scaling run
//   api_points_per_job         GitHub rate-limit points the coordinator spent during the scaling run, per job
// and, on stderr, the lane start time: `lanekeeper apply` of one lane until GitHub shows it online.
//
// Progress goes to stderr; stdout gets exactly one JSON line at the end. Exit 0 when both runs completed (whatever
// the figures), 1 when a step failed (nulls for what was not measured), 2 when this build has no `scaling` policy
// or webhook receiver. LK_BENCH_SCALING_JOBS / _SECONDS / _MAX shrink the trace for a quick try; the published
// figures use the defaults. LK_EMULATOR_REALISM applies as in every fleet (the drop rate is set to 20% here).
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { startFleet, realismFromEnv, SeededRandom, COORDINATOR_BIN } = await import(join(root, "test/harness/dist/index.js"));

const JOBS = Number(process.env.LK_BENCH_SCALING_JOBS ?? 300);
const TRACE_S = Number(process.env.LK_BENCH_SCALING_SECONDS ?? 300);
const MAX = Number(process.env.LK_BENCH_SCALING_MAX ?? 32);
const IDLE = 2;
/** A burst every this many seconds, its jobs queued within BURST_SPREAD_S. */
const BURST_EVERY_S = 50;
const BURST_SPREAD_S = 20;
const SCALE_DOWN_AFTER = "30s";
const SEED = 20261204;
const DROP_RATE = 0.2;
const SCOPE = "acme/api";
const POOLS = {
  small: { backend: "systemd", labels: ["linux", "x64", "lanes-small"] },
  large: { backend: "systemd", labels: ["linux", "x64", "lanes-large"] },
};
const RUNS_ON = { small: ["linux", "lanes-small"], large: ["linux", "lanes-large"] };
const HOSTS = ["build01", "build02"];
const WEBHOOK_SECRET_ENV = "LK_BENCH_WEBHOOK_SECRET";
const WEBHOOK_PATH = "/github/webhook";

const t0 = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
const result = {
  jobs: null,
  queue_wait_s_p50: null,
  queue_wait_s_p95: null,
  queue_wait_s_max: null,
  jobs_lost: null,
  jobs_cancelled: null,
  idle_lane_minutes: null,
  baseline_idle_lane_minutes: null,
  peak_lanes: null,
  api_points_per_job: null,
};
let exitCode = 0;

// ---- the trace ------------------------------------------------------------------------------------------------

/**
 * A bursty trace: a quiet background over the whole window plus bursts, each on one pool (alternating, the odd one
 * on both), arriving within a few seconds. Durations 5–60 s, mostly short (as CI jobs are): 70% 5–15 s, 25% 15–40 s,
 * 5% 40–60 s. Same seed, same trace.
 */
function makeTrace(jobs, seconds, seed) {
  const rnd = new SeededRandom(seed);
  const between = (a, b) => a + (b - a) * rnd.next();
  const duration = () => {
    const u = rnd.next();
    return Math.round(1000 * (u < 0.7 ? between(5, 15) : u < 0.95 ? between(15, 40) : between(40, 60)));
  };
  const out = [];
  const background = Math.round(jobs * 0.3);
  for (let i = 0; i < background; i++) {
    const pool = rnd.next() < 0.5 ? "small" : "large";
    out.push({ pool, atMs: Math.round(between(0, seconds * 1000)), durationMs: duration() });
  }
  const bursts = Math.max(1, Math.round(seconds / BURST_EVERY_S));
  const perBurst = Math.floor((jobs - background) / bursts);
  for (let b = 0; b < bursts; b++) {
    const start = (b * seconds * 1000) / bursts + between(0, 5000);
    const n = b === bursts - 1 ? jobs - background - perBurst * (bursts - 1) : perBurst;
    for (let i = 0; i < n; i++) {
      const pool = b % 3 === 2 ? (rnd.next() < 0.5 ? "small" : "large") : b % 2 === 0 ? "small" : "large";
      out.push({ pool, atMs: Math.round(start + between(0, BURST_SPREAD_S * 1000)), durationMs: duration() });
    }
  }
  out.sort((a, b) => a.atMs - b.atMs);
  return out.map((j, i) => ({ repo: SCOPE, labels: RUNS_ON[j.pool], atMs: j.atMs, durationMs: j.durationMs, name: `${j.pool}-${i}` }));
}

/** The most jobs of a pool running at once if each started the moment it was queued (what `max` must cover). */
function idealPeak(trace, label) {
  const edges = trace.filter((j) => j.labels.includes(label)).flatMap((j) => [[j.atMs, 1], [j.atMs + j.durationMs, -1]]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of edges) peak = Math.max(peak, (now += d));
  return peak;
}

const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const round = (x, d = 2) => (x === null ? null : Number(x.toFixed(d)));

// ---- fleet helpers --------------------------------------------------------------------------------------------

const isLane = (r) => r.labels.some((l) => l.startsWith("lk-lane-"));
const lanes = async (fleet) => (await fleet.github.control.listRunners()).filter(isLane);

async function waitFor(what, probe, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    const v = await probe();
    if (v.done) return v;
    if (Date.now() - lastLog > 10_000) {
      log(`${what}: ${v.progress}`);
      lastLog = Date.now();
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${v.progress})`);
    await delay(500);
  }
}

function lanePolicy(mode) {
  return Object.keys(POOLS).map((pool) => ({
    scope: SCOPE,
    pool,
    hosts: HOSTS,
    ...(mode === "count" ? { count: MAX } : { scaling: { min: 0, max: MAX, idle: IDLE, scaleDownAfter: SCALE_DOWN_AFTER } }),
  }));
}

/** `lanekeeper serve` with the webhook receiver; resolves once it says where it listens, with a stop(). */
async function startServe(fleet, secret, label) {
  const child = spawn(process.execPath, [COORDINATOR_BIN, "serve", "--json"], {
    cwd: fleet.dir,
    env: { ...process.env, ...fleet.coordinatorEnv, [WEBHOOK_SECRET_ENV]: secret, LANEKEEPER_LOG_FILE: join(fleet.dir, "serve.log") },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  // LK_BENCH_SCALING_SERVE_LOG=<dir> keeps serve's progress events (JSON lines) per run for a post-mortem.
  const keep = process.env.LK_BENCH_SCALING_SERVE_LOG === undefined ? undefined : createWriteStream(join(process.env.LK_BENCH_SCALING_SERVE_LOG, `serve-${label}.jsonl`));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lanekeeper serve did not report its webhook port in 120 s: ${stderr.slice(-2000)}`)), 120_000);
    child.stderr.on("data", (b) => {
      keep?.write(b);
      stderr = (stderr + b.toString()).slice(-20_000);
      const m = /GitHub webhooks on port (\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`lanekeeper serve exited (${code}) before listening: ${stderr.slice(-2000)}`));
    });
  });
  return {
    port,
    tail: () => stderr.slice(-3000),
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 180_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/**
 * One replay of the trace under a lanes policy: configure, start `serve`, wait for the steady state, replay,
 * sample the lanes every second until every job ended (or the deadline), stop `serve`.
 */
async function replay(fleet, mode, trace, secret) {
  await fleet.editPolicy((doc) => {
    doc.lanes = lanePolicy(mode);
  });
  const serve = await startServe(fleet, secret, mode);
  log(`${mode}: lanekeeper serve up, webhooks on port ${serve.port}`);
  try {
    await fleet.github.control.setWebhook(`http://127.0.0.1:${serve.port}${WEBHOOK_PATH}`, secret);
    const steady = mode === "count" ? 2 * MAX : 2 * IDLE;
    await waitFor(
      `${mode}: steady state (${steady} idle lanes online)`,
      async () => {
        const ls = await lanes(fleet);
        const on = ls.filter((r) => r.status === "online" && !r.busy).length;
        return { done: on >= steady && ls.length === on, progress: `${on} online of ${ls.length}` };
      },
      15 * 60_000,
    );
    const realism = await fleet.github.control.setRealism({ ...realismFromEnv(), webhookDropRate: DROP_RATE, seed: SEED });
    const before = await fleet.github.control.stats();
    const { id } = await fleet.github.control.startTrace(trace);
    const start = Date.now();
    log(`${mode}: trace ${id} started: ${trace.length} jobs over ${TRACE_S} s, ${realism.webhookDropRate * 100}% of webhooks dropped`);
    let idleLaneMs = 0;
    let peak = 0;
    // Lane start under load: from a registration's first sighting to its first sighting online.
    const firstSeen = new Map();
    const startSeconds = [];
    let last = Date.now();
    let lastLog = 0;
    let view;
    const deadline = start + TRACE_S * 1000 + 15 * 60_000;
    for (;;) {
      await delay(1000);
      const ls = await lanes(fleet);
      const now = Date.now();
      const idle = ls.filter((r) => r.status === "online" && !r.busy).length;
      for (const r of ls) {
        if (!firstSeen.has(r.id)) firstSeen.set(r.id, { at: now, online: r.status === "online" });
        const f = firstSeen.get(r.id);
        if (!f.online && r.status === "online") {
          f.online = true;
          startSeconds.push((now - f.at) / 1000);
        }
      }
      idleLaneMs += idle * (now - last);
      last = now;
      peak = Math.max(peak, ls.length);
      view = await fleet.github.control.getTrace(id);
      const s = view.summary;
      if (now - lastLog > 10_000) {
        log(`${mode}: ${ls.length} lanes (${idle} idle); jobs pending ${s.pending}, queued ${s.queued}, running ${s.inProgress}, done ${s.succeeded + s.failed + s.cancelled}`);
        lastLog = now;
      }
      if (s.pending + s.queued + s.inProgress === 0 || now > deadline) break;
    }
    const after = await fleet.github.control.stats();
    const s = view.summary;
    const waits = view.jobs.filter((j) => j.queueWaitMs !== null).map((j) => j.queueWaitMs / 1000);
    const out = {
      jobs: s.total,
      p50: round(quantile(waits, 0.5)),
      p95: round(quantile(waits, 0.95)),
      max: round(waits.length ? Math.max(...waits) : null),
      lost: s.total - s.succeeded - s.cancelled,
      cancelled: s.cancelled,
      idleLaneMinutes: round(idleLaneMs / 60_000),
      peak,
      laneStartP50: round(quantile(startSeconds, 0.5), 1),
      laneStartP95: round(quantile(startSeconds, 0.95), 1),
      lanesStarted: startSeconds.length,
      points: (after.byToken.admin?.points ?? 0) - (before.byToken.admin?.points ?? 0),
      webhooks: {
        delivered: after.webhooks.delivered - before.webhooks.delivered,
        dropped: after.webhooks.dropped - before.webhooks.dropped,
        delayed: after.webhooks.delayed - before.webhooks.delayed,
      },
      slowest: view.jobs
        .filter((j) => j.queueWaitMs !== null)
        .sort((a, b) => b.queueWaitMs - a.queueWaitMs)
        .slice(0, 5)
        .map((j) => `${j.name} ${round(j.queueWaitMs / 1000, 1)} s`),
    };
    log(
      `${mode}: ${out.jobs} jobs, queue wait p50 ${out.p50} s, p95 ${out.p95} s, max ${out.max} s; lost ${out.lost}, cancelled ${out.cancelled}; ` +
        `idle lane-minutes ${out.idleLaneMinutes}; peak lanes ${out.peak}; ${out.lanesStarted} lanes started (registration to online p50 ${out.laneStartP50} s, p95 ${out.laneStartP95} s, ±1 s); ${out.points} API points; webhooks delivered ${out.webhooks.delivered}, ` +
        `dropped ${out.webhooks.dropped}, delayed ${out.webhooks.delayed}; slowest: ${out.slowest.join(", ")}`,
    );
    return out;
  } finally {
    await fleet.github.control.setWebhook(undefined);
    const code = await serve.stop();
    if (code !== 0) log(`${mode}: lanekeeper serve exited ${code}: ${serve.tail()}`);
  }
}

// ---- main -----------------------------------------------------------------------------------------------------

let fleet;
try {
  const trace = makeTrace(JOBS, TRACE_S, SEED);
  log(
    `trace: ${trace.length} jobs over ${TRACE_S} s (seed ${SEED}); ideal peak running jobs: small ${idealPeak(trace, "lanes-small")}, ` +
      `large ${idealPeak(trace, "lanes-large")}; max ${MAX} lanes per pool`,
  );
  log("starting the fleet (nats-server, GitHub emulator with realism, 2 agents in systemd sandboxes)");
  fleet = await startFleet({
    agents: HOSTS.map((hostId) => ({ hostId, runtime: "systemd", capacity: MAX, control: { maxLanes: 2 * MAX } })),
    pools: POOLS,
    lanes: [],
    handmade: { systemd: false, container: false, githubOnly: false },
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 300_000 },
    log,
  });
  const secret = randomBytes(24).toString("hex");
  await fleet.editPolicy((doc) => {
    doc.coordinator.applyConcurrency = 16;
    doc.coordinator.webhook = { listen: "127.0.0.1:0", path: WEBHOOK_PATH, secretEnv: WEBHOOK_SECRET_ENV };
    doc.lanes = lanePolicy("scaling");
  });
  const check = await fleet.lanekeeper(["plan", "--json"], { env: { [WEBHOOK_SECRET_ENV]: secret } });
  if (check.code === 3) {
    log(`this build has no scaling policy or webhook receiver (plan exited ${check.code}): ${check.stderr.slice(-1500)}`);
    exitCode = 2;
  } else {
    // ---- lane start time: one lane, `lanekeeper apply`, until online
    await fleet.editPolicy((doc) => {
      doc.lanes = [{ scope: SCOPE, pool: "small", count: 1, hosts: [HOSTS[0]] }];
    });
    const a0 = Date.now();
    const one = await fleet.lanekeeper(["apply", "--yes", "--json"]);
    if (one.code !== 0) throw new Error(`apply of one lane exited ${one.code}: ${one.stderr.slice(-2000)}`);
    await waitFor("one lane online", async () => ({ done: (await lanes(fleet)).some((r) => r.status === "online"), progress: "starting" }), 300_000);
    const laneStartS = round((Date.now() - a0) / 1000);
    log(`lane start time: ${laneStartS} s (lanekeeper apply of one lane until GitHub shows it online)`);

    const scaling = await replay(fleet, "scaling", trace, secret);
    const baseline = await replay(fleet, "count", trace, secret);
    Object.assign(result, {
      jobs: scaling.jobs,
      queue_wait_s_p50: scaling.p50,
      queue_wait_s_p95: scaling.p95,
      queue_wait_s_max: scaling.max,
      jobs_lost: scaling.lost,
      jobs_cancelled: scaling.cancelled,
      idle_lane_minutes: scaling.idleLaneMinutes,
      baseline_idle_lane_minutes: baseline.idleLaneMinutes,
      peak_lanes: scaling.peak,
      api_points_per_job: round(scaling.points / Math.max(1, scaling.jobs)),
    });
    log(`lane start time ${laneStartS} s; target p95 <= ${round(laneStartS + 5)} s: ${scaling.p95 !== null && scaling.p95 <= laneStartS + 5 ? "met" : "MISSED"}`);
    log(`baseline (fixed ${MAX} lanes per pool): queue wait p50 ${baseline.p50} s, p95 ${baseline.p95} s, max ${baseline.max} s, lost ${baseline.lost}, cancelled ${baseline.cancelled}`);
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
