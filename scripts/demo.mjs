#!/usr/bin/env node
// lanekeeper demo: a whole fleet on this machine, driven through the real command lines. See docs/demo.md.
//
//   npm run demo                 # set up the machine, build, run the demo
//   npm run demo -- --skip-setup # machine already set up and built
//   npm run demo -- --keep       # leave the fleet running at the end until Ctrl-C (to look around)
//
// Exit codes: 0 every step ran and every invariant held; 1 an invariant failed (a job was cancelled or failed,
// an unmanaged runner was touched, the audit chain did not verify, a lane did not come online); 2 the demo could
// not run a step at all (setup, build, a command the coordinator does not have yet).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { runScalingPart, SCALING_STEPS } from "./demo-scaling.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const t0 = Date.now();
const tty = process.stdout.isTTY === true;
const c = (code, s) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
const bold = (s) => c("1", s);
const dim = (s) => c("2", s);
const green = (s) => c("32", s);
const red = (s) => c("31", s);
const yellow = (s) => c("33", s);
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s`;

const TOTAL_STEPS = 13 + SCALING_STEPS;
let step = 0;
function header(title) {
  step += 1;
  console.log(`\n${bold(`==> [${step}/${TOTAL_STEPS}] ${title}`)} ${dim(elapsed())}`);
}
function info(line) {
  console.log(`    ${dim(elapsed())} ${line}`);
}
/** Drops the coordinator's pino log lines (JSON) from what is shown; returns the rest and how many were hidden. */
function withoutLogLines(text) {
  let hidden = 0;
  const kept = text.split("\n").filter((l) => {
    if (/^\{"level":\d+/.test(l.trim())) {
      hidden += 1;
      return false;
    }
    return true;
  });
  return { text: kept.join("\n"), hidden };
}
function block(text, max = 60) {
  const lines = text.replace(/\s+$/, "").split("\n");
  const shown = lines.length > max ? [...lines.slice(0, max), dim(`… ${lines.length - max} more lines`)] : lines;
  for (const l of shown) console.log(`      ${l}`);
}

/** A command's stderr: its progress lines; its log lines only counted (they are in the JSON log format). */
function showStderr(stderr, max) {
  const { text, hidden } = withoutLogLines(stderr);
  if (text.trim()) block(dim(text.trim()), max);
  if (hidden > 0) console.log(`      ${dim(`(${hidden} log line(s) on stderr not shown)`)}`);
}

/** Invariant failures (exit 1) and steps that could not run (exit 2). */
const violations = [];
const incomplete = [];
function violation(msg) {
  violations.push(msg);
  console.log(`    ${red("INVARIANT FAILED")} ${msg}`);
}
function notRun(msg) {
  incomplete.push(msg);
  console.log(`    ${yellow("NOT RUN")} ${msg}`);
}

function run(cmd, argv, what) {
  info(`$ ${[cmd, ...argv].join(" ")}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(red(`${what} failed (exit ${r.status ?? r.signal}); fix that and run the demo again`));
    process.exit(2);
  }
}

// ------------------------------------------------------------------------------------------------------------
header("machine set-up and build");
if (args.has("--skip-setup")) info("skipped (--skip-setup)");
else {
  // The npm lock keeps a parallel `npm i` in this working tree from racing the setup's `npm ci`.
  if (existsSync("/usr/bin/flock")) run("flock", ["/tmp/lk-npm.lock", "bash", "scripts/setup-machine.sh"], "scripts/setup-machine.sh");
  else run("bash", ["scripts/setup-machine.sh"], "scripts/setup-machine.sh");
  run("npm", ["run", "build", "--silent"], "npm run build");
}

const harness = await import(join(root, "test/harness/dist/index.js"));
const { startFleet } = harness;

const SCOPE = "acme/api";
const POLICY_TEMPLATE = join(root, "examples/demo/lanekeeper.yaml");
const JOBS = 12;

let fleet;
let stopping = false;
async function cleanup() {
  if (stopping || !fleet) return;
  stopping = true;
  console.log(`\n${bold("==> cleaning up")} ${dim(elapsed())}`);
  await fleet.stop();
  info("stopped agents, lanes (units and containers), podman, systemd sandboxes, GitHub emulator, nats-server; removed temp dirs");
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    console.log(yellow(`\n${sig}: stopping the fleet`));
    cleanup().finally(() => process.exit(130));
  });
}

/** Runs `lanekeeper <args>`, prints its output, returns the result. */
async function lk(argv, opts = {}) {
  info(`$ lanekeeper ${argv.join(" ")}`);
  const r = await fleet.lanekeeper(argv, opts);
  if (!opts.quiet) {
    if (r.stdout.trim()) block(r.stdout, opts.max ?? 60);
    showStderr(r.stderr, 20);
  }
  if (r.code !== 0) info(`${yellow(`exit ${r.code}`)}`);
  return r;
}

/** The coordinator CLI's top-level commands (from its help), so missing ones are reported, not crashed on. */
async function coordinatorCommands() {
  const r = await fleet.lanekeeper(["--help"]);
  const cmds = new Set();
  let inCommands = false;
  for (const line of r.stdout.split("\n")) {
    if (/^Commands:/.test(line)) inCommands = true;
    else if (inCommands) {
      const m = line.match(/^ {2}([a-z][a-z-]*)/);
      if (m) cmds.add(m[1]);
    }
  }
  return cmds;
}

async function managedRunners() {
  // A draining lane carries only lk-lane-<id> and lk-draining: recognise lanes by their unique lane label.
  return (await fleet.github.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lk-lane-")));
}

async function waitFor(what, probe, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  let lastShown = 0;
  for (;;) {
    const v = await probe();
    if (v.done) return v;
    if (v.progress !== last && Date.now() - lastShown > 2000) {
      info(`${what}: ${v.progress}`);
      last = v.progress;
      lastShown = Date.now();
    }
    if (Date.now() > end) return v;
    await delay(500);
  }
}

/** The lane step 7 drained (released again in step 13). */
let drainedLane;
const summary = { lanesCreated: 0, jobsRun: 0, jobsCancelled: 0, jobsFailed: 0, auditRecords: undefined, laneOps: [], scaling: {} };

try {
  // ----------------------------------------------------------------------------------------------------------
  header("start the fleet: nats-server, GitHub emulator, three real agents");
  fleet = await startFleet({
    repos: [SCOPE, "acme/web"],
    agents: [
      { hostId: "build01", runtime: "systemd" },
      { hostId: "build02", runtime: "systemd" },
      { hostId: "build03", runtime: "container" },
    ],
    policyTemplate: POLICY_TEMPLATE,
    log: (l) => info(l),
  });
  info(`fleet directory ${fleet.dir}`);
  info(`policy ${fleet.policyPath} (examples/demo/lanekeeper.yaml with this fleet's keys, URLs and image digest)`);
  info(`root key ${fleet.rootKeyPath} (lanekeeper keys root-init; offline in real life): pinned by the trust file every agent installed`);
  for (const a of fleet.agents) {
    const s = await a.status();
    info(
      `${a.hostId}: ${a.runtime}${a.sandbox ? ` in systemd sandbox (PID 1 = host PID ${a.sandbox.pid})` : " via podman"}, ` +
        `control ${s.controlEnabled ? green("enabled") : "disabled"}, ${s.unmanaged?.length ?? 0} unmanaged runner(s) seen`,
    );
  }
  info(`unmanaged on GitHub: ${fleet.handmade.registrations.join(", ")} (must stay untouched)`);

  const commands = await coordinatorCommands();
  info(`lanekeeper commands available: ${[...commands].filter((x) => x !== "help").join(", ")}`);

  // ----------------------------------------------------------------------------------------------------------
  header("lanekeeper plan (dry run: nothing changes)");
  const plan = await lk(["plan"]);
  if (plan.code !== 0) violation(`lanekeeper plan exited ${plan.code}`);

  // ----------------------------------------------------------------------------------------------------------
  header("lanekeeper apply --yes: create the lanes");
  const desired = 6; // examples/demo/lanekeeper.yaml: 4 systemd lanes on build01/02, 2 container lanes on build03
  let applied = false;
  if (!commands.has("apply")) notRun("`lanekeeper apply` is not in this build of the coordinator CLI");
  else {
    const r = await lk(["apply", "--yes"], { max: 80 });
    if (r.code !== 0) violation(`lanekeeper apply exited ${r.code}`);
    applied = true;
  }

  // ----------------------------------------------------------------------------------------------------------
  header("lanes coming online on GitHub (canonical labels)");
  if (!applied) notRun("no apply, no lanes");
  else {
    const v = await waitFor(
      "online",
      async () => {
        const m = await managedRunners();
        const online = m.filter((r) => r.status === "online").length;
        return { done: online >= desired, progress: `${online}/${desired} online`, m };
      },
      180_000,
    );
    summary.lanesCreated = v.m.length;
    for (const r of v.m) info(`${r.name.padEnd(24)} ${r.status.padEnd(8)} ${r.labels.join(",")}`);
    if (v.m.filter((r) => r.status === "online").length < desired) violation(`only ${v.progress} lanes came online`);
  }

  // ----------------------------------------------------------------------------------------------------------
  header(`a burst of ${JOBS} jobs through the emulator's control API`);
  const jobIds = [];
  if (!applied) notRun("no lanes to run jobs on");
  else {
    for (let i = 0; i < JOBS; i++) {
      const labels = i % 3 === 2 ? ["lanes-container"] : ["lanes-systemd"];
      const { id } = await fleet.github.control.createJob(SCOPE, { labels, durationMs: 6000 + (i % 4) * 1500, name: `demo-job-${i + 1}` });
      jobIds.push(id);
    }
    info(`queued ${jobIds.length} jobs (${jobIds.length - Math.floor(JOBS / 3)} for lanes-systemd, ${Math.floor(JOBS / 3)} for lanes-container), 6–10.5 s each`);
  }

  // ----------------------------------------------------------------------------------------------------------
  header("drain, restart and remove lanes while jobs run");
  if (!applied) notRun("no lanes to drain");
  else {
    const has = (c) => commands.has(c);
    if (!has("lanes")) notRun("`lanekeeper lanes drain|restart|remove` is not in this build of the coordinator CLI");
    else {
      // Pick lanes that are running a job right now: the interesting case for "never kill a job".
      await waitFor(
        "jobs starting",
        async () => {
          const busy = (await managedRunners()).filter((r) => r.busy).length;
          return { done: busy >= 3, progress: `${busy} lanes busy` };
        },
        60_000,
      );
      const busy = (await managedRunners()).filter((r) => r.busy && r.labels.includes("lanes-systemd"));
      const [toDrain, toRestart, toRemove] = busy;
      drainedLane = toDrain?.name;
      const ops = [
        ["drain", toDrain],
        ["restart", toRestart],
        ["remove", toRemove],
      ];
      // Run the three in parallel, as three operators might: each waits for its lane's job.
      const results = await Promise.all(
        ops
          .filter(([, r]) => r !== undefined)
          .map(async ([op, r]) => {
            const started = Date.now();
            const res = await fleet.lanekeeper(["lanes", op, r.name]);
            return { op, lane: r.name, job: r.jobId, res, s: (Date.now() - started) / 1000 };
          }),
      );
      for (const { op, lane, job, res, s } of results) {
        info(`$ lanekeeper lanes ${op} ${lane}   ${dim(`(lane was running job ${job}; took ${s.toFixed(1)} s)`)}`);
        if (res.stdout.trim()) block(res.stdout, 25);
        showStderr(res.stderr, 10);
        if (res.code !== 0) violation(`lanekeeper lanes ${op} ${lane} exited ${res.code}`);
        summary.laneOps.push(`${op} ${lane}`);
      }
      if (results.length < 3) info(yellow(`only ${results.length} systemd lanes were busy; ran ${results.length} operations`));
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  header("every job finished; none cancelled");
  if (jobIds.length === 0) notRun("no jobs were queued");
  else {
    const v = await waitFor(
      "jobs",
      async () => {
        const jobs = (await fleet.github.control.listJobs()).filter((j) => jobIds.includes(j.id));
        const done = jobs.filter((j) => j.status === "completed").length;
        return { done: done === jobIds.length, progress: `${done}/${jobIds.length} completed`, jobs };
      },
      300_000,
    );
    for (const j of v.jobs) {
      const where = j.runnerName ?? "-";
      info(`${j.name.padEnd(12)} ${String(j.status).padEnd(10)} ${String(j.conclusion ?? "-").padEnd(9)} on ${where}`);
    }
    summary.jobsRun = v.jobs.filter((j) => j.status === "completed").length;
    summary.jobsCancelled = v.jobs.filter((j) => j.conclusion === "cancelled").length;
    summary.jobsFailed = v.jobs.filter((j) => j.conclusion === "failure").length;
    if (summary.jobsCancelled > 0) violation(`${summary.jobsCancelled} job(s) were cancelled`);
    if (summary.jobsFailed > 0) violation(`${summary.jobsFailed} job(s) failed (a runner lost its job)`);
    if (summary.jobsRun < jobIds.length) violation(`${jobIds.length - summary.jobsRun} job(s) never completed`);
  }

  // ----------------------------------------------------------------------------------------------------------
  header("lanekeeper status");
  if (!commands.has("status")) notRun("`lanekeeper status` is not in this build of the coordinator CLI");
  else await lk(["status"]);

  // ----------------------------------------------------------------------------------------------------------
  header("lanekeeper audit verify (hash chain of every mutation)");
  if (!commands.has("audit")) notRun("`lanekeeper audit verify` is not in this build of the coordinator CLI");
  else {
    const r = await lk(["audit", "verify", "--json"]);
    const j = r.json;
    if (r.code !== 0 || !j || j.ok !== true) violation("the coordinator's audit chain did not verify");
    summary.auditRecords = j?.count;
  }
  for (const a of fleet.agents) {
    const r = await a.cli(["audit", "verify", "--json"]);
    const j = r.json;
    info(`${a.hostId} agent audit chain: ${r.code === 0 && j?.ok ? green(`${j.count} records, intact`) : red(`exit ${r.code} ${r.stderr.trim()}`)}`);
    if (r.code !== 0) violation(`${a.hostId}: lanekeeper-agent audit verify exited ${r.code}`);
    else summary.agentAuditRecords = (summary.agentAuditRecords ?? 0) + (j?.count ?? 0);
  }

  // ----------------------------------------------------------------------------------------------------------
  header("lanekeeper-agent status on build01 (local, read-only, over its unix socket)");
  {
    const r = await fleet.agent("build01").cli(["status"]);
    block(r.stdout, 40);
    if (r.code !== 0) violation(`lanekeeper-agent status exited ${r.code}`);
  }

  // ----------------------------------------------------------------------------------------------------------
  header("unmanaged runners untouched");
  {
    const problems = await fleet.handmade.verifyUntouched();
    for (const p of problems) violation(`unmanaged runner touched: ${p}`);
    if (problems.length === 0) {
      const u = fleet.handmade;
      info(green("untouched:") + ` unit ${u.unit?.name ?? "-"} (same file, same main PID), container ${u.container?.name ?? "-"} (same id and start), registrations ${u.registrations.join(", ")}`);
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  header("maintenance over: release the drained lane, apply again, the fleet is back to the policy");
  if (!applied) notRun("no apply");
  else {
    // A lane an operator drained stays out of service (and still counts as a lane) until released.
    if (drainedLane !== undefined) {
      const rel = await lk(["lanes", "release", drainedLane], { max: 10 });
      if (rel.code !== 0) violation(`lanekeeper lanes release ${drainedLane} exited ${rel.code}`);
    }
    const r = await lk(["apply", "--yes"], { max: 40 });
    if (r.code !== 0) violation(`second apply exited ${r.code}`);
    const v = await waitFor(
      "online",
      async () => {
        const m = await managedRunners();
        const online = m.filter((x) => x.status === "online" && !x.labels.includes("lk-draining")).length;
        return { done: online >= desired, progress: `${online}/${desired} online and in service` };
      },
      180_000,
    );
    if (!v.done) violation(`after the second apply only ${v.progress}`);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Steps 14-17: queue-driven scaling (scripts/demo-scaling.mjs).
  if (!applied) notRun("no apply, no scaling part");
  else if (!commands.has("serve")) notRun("`lanekeeper serve` is not in this build of the coordinator CLI");
  else {
    await runScalingPart({
      fleet,
      coordinatorBin: harness.COORDINATOR_BIN,
      header,
      info,
      block,
      lk,
      violation,
      notRun,
      summary,
      dim,
      green,
      yellow,
    });
  }

  if (args.has("--keep")) {
    console.log(yellow(`\n--keep: the fleet keeps running in ${fleet.dir}; policy ${fleet.policyPath}. Ctrl-C to stop and clean up.`));
    await new Promise(() => undefined);
  }
} catch (e) {
  console.error(red(`\ndemo aborted: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  incomplete.push(`aborted: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
} finally {
  await cleanup();
}

// ------------------------------------------------------------------------------------------------------------
const total = ((Date.now() - t0) / 1000).toFixed(1);
console.log(`\n${bold("==> summary")}`);
const row = (k, v) => console.log(`    ${k.padEnd(26)} ${v}`);
row("lanes created", summary.lanesCreated);
row("lane operations", summary.laneOps.length > 0 ? summary.laneOps.join("; ") : "-");
row("jobs run", summary.jobsRun);
row("jobs cancelled", summary.jobsCancelled === 0 ? green("0") : red(String(summary.jobsCancelled)));
row("jobs failed", summary.jobsFailed === 0 ? "0" : red(String(summary.jobsFailed)));
row("scaling", summary.scaling.burstJobs === undefined ? "-" : `${summary.scaling.burstJobs} burst jobs, peak ${summary.scaling.peak} lanes, ${summary.scaling.scaledDown ?? 0} scaled down, ${summary.scaling.scheduleLanes ?? 0} kept by the schedule`);
row("coordinator audit records", summary.auditRecords ?? "-");
row("agent audit records", summary.agentAuditRecords ?? "-");
row("elapsed", `${total} s`);
if (violations.length > 0) {
  console.log(red(`\n${violations.length} invariant(s) failed:`));
  for (const v of violations) console.log(red(`  - ${v}`));
}
if (incomplete.length > 0) {
  console.log(yellow(`\n${incomplete.length} step(s) could not run:`));
  for (const v of incomplete) console.log(yellow(`  - ${v}`));
}
if (violations.length === 0 && incomplete.length === 0) console.log(green("\nall invariants held"));
process.exit(violations.length > 0 ? 1 : incomplete.length > 0 ? 2 : 0);
