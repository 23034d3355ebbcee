// The scaling part of the demo (scripts/demo.mjs, docs/demo.md "Scaling"): the `linux-burst` pool of
// examples/demo/lanekeeper.yaml follows the job queue. `lanekeeper serve` receives GitHub's `workflow_job`
// webhooks (signed with a secret) and reconciles them with the REST API; a burst of jobs scales the pool up to its
// `max`, it scales back down `scaleDownAfter` after the burst (through the drain protocol), and a schedule window
// raises its `min`, which `plan` and `status` explain by the schedule's name.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

export const BURST_POOL = "linux-burst";
const BURST_LABEL = "burst";
const BURST_JOBS = 8;
/** The demo shortens the example's scaleDownAfter so the scale-down shows within the demo. */
const DEMO_SCALE_DOWN_AFTER = "15s";
const SCHEDULE = { name: "office-hours", cron: "* * * * *", duration: "1h", timezone: "UTC", min: 2 };
const WEBHOOK_SECRET_ENV = "LK_WEBHOOK_SECRET";
/** How many steps this part adds to the demo's count. */
export const SCALING_STEPS = 4;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The coordinator's audit records, one object per complete line. */
async function auditRecords(fleet) {
  const text = await readFile(fleet.auditPath, "utf8").catch(() => "");
  // serve appends while the demo reads: a line still being written is left for the next read.
  const lines = text.split("\n");
  lines.pop();
  return lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/** Lanes of the burst pool: created (planned creates for the pool) and not removed yet. */
async function burstLanes(fleet) {
  const recs = await auditRecords(fleet);
  const created = recs.filter((r) => r.source === "coordinator" && r.action === "create" && r.phase === "planned" && r.details?.pool === BURST_POOL).map((r) => r.laneId);
  const removed = new Set(recs.filter((r) => r.source === "coordinator" && r.action === "remove" && r.phase === "succeeded").map((r) => r.laneId));
  return { created, live: created.filter((id) => !removed.has(id)), removed: created.filter((id) => removed.has(id)) };
}

/**
 * Runs the scaling steps. `d` is the demo's toolkit: fleet, header, info, block, lk, violation, notRun, summary,
 * elapsed-style helpers; see scripts/demo.mjs.
 */
export async function runScalingPart(d) {
  const { fleet, header, info, block, lk, violation, notRun, summary, dim, green, yellow } = d;
  const secret = randomBytes(24).toString("base64url");
  let serve;

  const startServe = async (intervalMs) => {
    const logPath = join(fleet.dir, `serve-${Date.now()}.log`);
    const fh = await open(logPath, "a", 0o600);
    const argv = [d.coordinatorBin, "serve", "--interval", String(intervalMs)];
    info(`$ lanekeeper ${argv.slice(1).join(" ")}   ${dim(`(in the background; its JSON log goes to ${logPath})`)}`);
    const [cmd, args] = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", process.execPath, ...argv]] : [process.execPath, argv];
    const child = spawn(cmd, args, {
      cwd: fleet.dir,
      env: { ...process.env, ...fleet.coordinatorEnv, [WEBHOOK_SECRET_ENV]: secret, LANEKEEPER_INSTANCE: "demo" },
      stdio: ["ignore", fh.fd, fh.fd],
    });
    await fh.close();
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const exited = new Promise((r) => child.once("exit", r));
      if ((await Promise.race([exited.then(() => true), delay(60_000).then(() => false)])) === false) child.kill("SIGKILL");
    };
    const end = Date.now() + 90_000;
    for (;;) {
      const text = await readFile(logPath, "utf8").catch(() => "");
      if (text.includes("reconciling every")) break;
      if (child.exitCode !== null || Date.now() > end) {
        await stop();
        throw new Error(`lanekeeper serve did not start (exit ${child.exitCode}): ${text.slice(-1500)}`);
      }
      await delay(300);
    }
    return { child, logPath, stop };
  };

  try {
    // --------------------------------------------------------------------------------------------------------
    header(`queue-driven scaling: ${BURST_POOL} follows the job queue; lanekeeper serve receives GitHub's webhooks`);
    const port = await freePort();
    await fleet.editPolicy((doc) => {
      doc.coordinator.webhook = { listen: `127.0.0.1:${port}`, path: "/github/webhook", secretEnv: WEBHOOK_SECRET_ENV };
      // The REST pass that repairs lost deliveries (the emulator loses some, as GitHub does): every 5 s here.
      doc.coordinator.demand = { ...(doc.coordinator.demand ?? {}), restIntervalMs: 5000 };
      const lane = doc.lanes.find((l) => l.pool === BURST_POOL);
      lane.scaling.scaleDownAfter = DEMO_SCALE_DOWN_AFTER;
    });
    const policy = await readFile(fleet.policyPath, "utf8");
    const lanesAt = policy.indexOf(`pool: ${BURST_POOL}`);
    info(`policy (excerpt): the ${BURST_POOL} lanes entry; the demo set the webhook endpoint to 127.0.0.1:${port} and scaleDownAfter to ${DEMO_SCALE_DOWN_AFTER}`);
    if (lanesAt >= 0) block(policy.slice(policy.lastIndexOf("\n  -", lanesAt) + 1).split("\n").slice(0, 12).join("\n"), 14);
    serve = await startServe(3000);
    const webhookUrl = `http://127.0.0.1:${port}/github/webhook`;
    await fleet.github.control.setWebhook(webhookUrl, secret);
    info(`GitHub (the emulator) now sends workflow_job webhooks to ${webhookUrl}, signed with the secret in $${WEBHOOK_SECRET_ENV}`);
    await lk(["status"], { max: 40 });

    // --------------------------------------------------------------------------------------------------------
    header(`a burst of ${BURST_JOBS} jobs for runs-on [${BURST_LABEL}]: ${BURST_POOL} scales up to its max`);
    const ids = [];
    const t0 = Date.now();
    for (let i = 0; i < BURST_JOBS; i++) {
      const { id } = await fleet.github.control.createJob("acme/api", { labels: [BURST_LABEL], durationMs: 5000 + (i % 3) * 1000, name: `burst-${i + 1}` });
      ids.push(id);
    }
    info(`queued ${ids.length} jobs of 5–7 s; no lane of ${BURST_POOL} exists yet (min 0)`);
    let peak = 0;
    let shownStatus = false;
    let lastLine = "";
    let lastShown = 0;
    for (;;) {
      const jobs = (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id));
      const runners = (await fleet.github.control.listRunners()).filter((r) => r.labels.includes(`lk-pool-${BURST_POOL}`));
      const { live } = await burstLanes(fleet);
      peak = Math.max(peak, live.length);
      const q = jobs.filter((j) => j.status === "queued").length;
      const r = jobs.filter((j) => j.status === "in_progress").length;
      const c = jobs.filter((j) => j.status === "completed").length;
      const line = `${BURST_POOL}: ${live.length} lane(s) (${runners.filter((x) => x.busy).length} busy) | jobs: ${q} queued, ${r} running, ${c} done`;
      if (line !== lastLine && Date.now() - lastShown > 1500) {
        info(line);
        lastLine = line;
        lastShown = Date.now();
      }
      if (!shownStatus && live.length >= 2 && q > 0) {
        shownStatus = true;
        await lk(["status"], { max: 40 });
      }
      if (c === ids.length) break;
      if (Date.now() - t0 > 240_000) {
        violation(`burst: only ${c}/${ids.length} jobs completed within 240 s`);
        break;
      }
      await delay(700);
    }
    const jobs = (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id));
    const waits = jobs.filter((j) => j.startedAt).map((j) => (Date.parse(j.startedAt) - Date.parse(j.createdAt)) / 1000);
    const bad = jobs.filter((j) => j.status === "completed" && j.conclusion !== "success");
    if (bad.length > 0) violation(`burst: ${bad.length} job(s) ended ${bad.map((j) => j.conclusion).join(", ")}`);
    info(
      `${green(`${jobs.filter((j) => j.conclusion === "success").length}/${ids.length} succeeded`)}, peak ${peak} lanes (max 4), ` +
        `queue wait ${Math.min(...waits).toFixed(1)}–${Math.max(...waits).toFixed(1)} s (a lane start, no fixed delay)`,
    );
    summary.scaling.burstJobs = jobs.filter((j) => j.conclusion === "success").length;
    summary.scaling.peak = peak;
    summary.jobsCancelled += jobs.filter((j) => j.conclusion === "cancelled").length;

    // --------------------------------------------------------------------------------------------------------
    header(`no more jobs: ${BURST_POOL} scales back down after scaleDownAfter (${DEMO_SCALE_DOWN_AFTER}), each lane drained first`);
    const tDown = Date.now();
    let lastLive = -1;
    for (;;) {
      const { live, removed } = await burstLanes(fleet);
      if (live.length !== lastLive) {
        info(`${BURST_POOL}: ${live.length} lane(s) left, ${removed.length} removed`);
        lastLive = live.length;
      }
      if (live.length === 0) break;
      if (Date.now() - tDown > 180_000) {
        violation(`scale-down: ${live.length} lane(s) of ${BURST_POOL} still there after 180 s`);
        break;
      }
      await delay(1000);
    }
    summary.scaling.scaledDown = (await burstLanes(fleet)).removed.length;
    info(`back to min 0 in ${((Date.now() - tDown) / 1000).toFixed(1)} s; the audit has a drain-checked remove per lane`);
    await serve.stop();
    info("stopped lanekeeper serve (SIGTERM: it finishes its cycle, releases the leader lock, exits 0)");
    serve = undefined;

    // --------------------------------------------------------------------------------------------------------
    header(`a schedule window raises min: "${SCHEDULE.name}" (cron "${SCHEDULE.cron}", duration ${SCHEDULE.duration}, min ${SCHEDULE.min})`);
    await fleet.editPolicy((doc) => {
      const lane = doc.lanes.find((l) => l.pool === BURST_POOL);
      lane.scaling.schedules = [SCHEDULE];
    });
    info(`added to the ${BURST_POOL} lanes entry: schedules: [{name: ${SCHEDULE.name}, cron: "${SCHEDULE.cron}", duration: ${SCHEDULE.duration}, timezone: UTC, min: ${SCHEDULE.min}}]`);
    info(dim(`(every minute for an hour: in force whenever the demo runs; office hours would be cron "0 8 * * 1-5", duration 10h)`));
    const plan = await lk(["plan"], { max: 40 });
    if (!plan.stdout.includes(SCHEDULE.name)) violation(`lanekeeper plan does not name the schedule "${SCHEDULE.name}" as the reason for its creates`);
    const apply = await lk(["apply", "--yes"], { max: 30 });
    if (apply.code !== 0) violation(`lanekeeper apply (schedule window) exited ${apply.code}`);
    const tSched = Date.now();
    for (;;) {
      const { live } = await burstLanes(fleet);
      if (live.length >= SCHEDULE.min) break;
      if (Date.now() - tSched > 120_000) {
        violation(`schedule: ${live.length}/${SCHEDULE.min} lanes of ${BURST_POOL}`);
        break;
      }
      await delay(1000);
    }
    summary.scaling.scheduleLanes = (await burstLanes(fleet)).live.length;
    const status = await lk(["status"], { max: 40 });
    if (!status.stdout.includes(SCHEDULE.name)) violation(`lanekeeper status does not explain ${BURST_POOL}'s wanted lanes by schedule "${SCHEDULE.name}"`);
    const verify = await lk(["audit", "verify", "--json"], { quiet: true });
    if (verify.code !== 0 || verify.json?.ok !== true) violation("the coordinator's audit chain did not verify after scaling");
    else info(green(`audit chain intact: ${verify.json.count} records`));
  } catch (e) {
    notRun(`scaling: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    if (yellow) console.log(yellow(`    ${e instanceof Error ? e.stack : String(e)}`));
  } finally {
    await serve?.stop();
  }
}
