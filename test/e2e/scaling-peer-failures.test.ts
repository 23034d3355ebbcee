// Issue 13 acceptance: queue-driven scaling on a real fleet, one test per failure the peers' trackers report.
// One fleet for the file (nats-server, the GitHub emulator with its realism on: `busy` lags the job, a killed runner
// stays online a while, late deliveries; a real lanekeeper-agent in its own systemd), one `lanekeeper serve` with
// its webhook endpoint, and the webhook relay of scaling-fixture.ts in between, which drops, redelivers and
// resends deliveries on the test's request. Every pool has its own capability label, so the tests do not share
// demand. Each test shows its jobs run to completion (none cancelled); times are measured and printed, and
// asserted only against bounds tied to what the test itself measured.
//
//   garm #47            demand above max is remembered, served as room appears, also after a scale-down
//   garm #73, ARC #1219 duplicate `queued` deliveries do not multiply lanes; an idle lane takes the job first
//   garm #86, #270      no fixed wait before scale-up: a chain of dependent jobs pays one lane start per job
//   ARC #2466, garm #590 a lost `queued` and a lost `completed` are repaired by the REST pass
//   tf-aws-runner #933  the lane made for job A takes job B; A still gets a lane and runs
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { realismFromEnv, type Fleet, type JobView } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditChain, e2eFleet, eventually, expectCompleteOperations, expectJobsSucceeded, expectUnmanagedUntouched, fleetState, jobsById } from "./e2e-fixture.js";
import {
  createdLanes,
  freePort,
  jobTimes,
  liveLanes,
  operations,
  peakWhile,
  serveLogTail,
  startServe,
  webhookSecret,
  WebhookRelay,
  writeScalingPolicy,
  type OperationView,
  type ScalingLane,
  type ServeHandle,
} from "./scaling-fixture.js";

const SCOPE = "acme/api";
const HOST = "build01";
/** Reconcile interval of the shared `serve`: short, so scale-down and repairs show within seconds. */
const INTERVAL_MS = 2000;
/** REST reconciliation of demand (the repair path for lost deliveries). */
const REST_INTERVAL_MS = 3000;

const POOLS = {
  "max-47": { backend: "systemd" as const, labels: ["linux", "scale-47"], mode: "ephemeral" as const },
  "dup-73": { backend: "systemd" as const, labels: ["linux", "scale-73"], mode: "persistent" as const },
  "chain-86": { backend: "systemd" as const, labels: ["linux", "scale-86"], mode: "ephemeral" as const },
  "lost-2466": { backend: "systemd" as const, labels: ["linux", "scale-2466"], mode: "persistent" as const },
  "race-933": { backend: "systemd" as const, labels: ["linux", "scale-933"], mode: "ephemeral" as const },
};

const LANES: ScalingLane[] = [
  { scope: SCOPE, pool: "max-47", hosts: [HOST], scaling: { min: 0, max: 2, idle: 0, scaleDownAfter: "4s" } },
  { scope: SCOPE, pool: "dup-73", hosts: [HOST], scaling: { min: 1, max: 3, idle: 0, scaleDownAfter: "5s" } },
  { scope: SCOPE, pool: "chain-86", hosts: [HOST], scaling: { min: 0, max: 1, idle: 0, scaleDownAfter: "2m" } },
  { scope: SCOPE, pool: "lost-2466", hosts: [HOST], scaling: { min: 0, max: 2, idle: 0, scaleDownAfter: "4s" } },
  { scope: SCOPE, pool: "race-933", hosts: [HOST], scaling: { min: 0, max: 3, idle: 0, scaleDownAfter: "5s" } },
];

let fleet: Fleet;
let relay: WebhookRelay;
let serve: ServeHandle | undefined;
let webhookPort = 0;
const secret = webhookSecret();
/** Every job the file queued: none may end cancelled or failed. */
const allJobs: number[] = [];

/** Prints a measured line into the test output (the report the issue asks for). */
function report(line: string): void {
  process.stdout.write(`[scaling-e2e] ${line}\n`);
}

async function queue(pool: keyof typeof POOLS, durationMs: number, name: string): Promise<number> {
  const label = POOLS[pool].labels[1]!;
  const { id } = await fleet.github.control.createJob(SCOPE, { labels: ["linux", label], durationMs, name });
  allJobs.push(id);
  return id;
}

/** (Re)starts the shared `serve` with these intervals (the REST one is policy, read at start). */
async function restartServe(intervalMs: number, restIntervalMs: number): Promise<void> {
  await serve?.stop();
  relay.setTarget(undefined);
  await writeScalingPolicy(fleet, { webhookPort, restIntervalMs, lanes: LANES });
  serve = await startServe(fleet, { intervalMs, webhookPort, secret, instance: `scaling-e2e-${intervalMs}` });
  relay.setTarget(serve.webhookUrl);
}

/** Lanes of `pool` that now exist reach `n` (a scale-down finished, or a floor was filled). */
async function waitLiveLanes(pool: string, n: number, timeoutMs = 120_000): Promise<void> {
  await eventually(async () => (await liveLanes(fleet, pool)).length === n, `${n} live lane(s) of ${pool}`, timeoutMs, 500).catch(async (e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await fleetState(fleet)}\nserve log:\n${await serveLogTail(serve)}`);
  });
}

/** Scale-up actions (`create`, or `arm` of an ephemeral lane) planned for `pool` from `sinceMs` on. */
function scaleUps(pool: string, sinceMs = 0): Promise<OperationView[]> {
  return operations(fleet, pool, ["create", "arm"], sinceMs);
}

function laneOf(j: JobView): string {
  return j.runnerName ?? "";
}

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [{ hostId: HOST, runtime: "systemd", capacity: 12 }],
    pools: POOLS,
    lanes: [],
    handmade: { container: false },
    // The emulator's realism stays on (busy lag both ways, a killed runner online a while, late deliveries); the
    // lost deliveries are the relay's, chosen by each test, so what a test asserts does not hang on a dice roll.
    github: { realism: { ...realismFromEnv(), webhookDropRate: 0 } },
  });
  webhookPort = await freePort();
  relay = await WebhookRelay.start(secret);
  await fleet.github.control.setWebhook(relay.url, secret);
  await restartServe(INTERVAL_MS, REST_INTERVAL_MS);
  // The only floor of the file: dup-73 keeps one lane.
  await waitLiveLanes("dup-73", 1);
});

afterAll(async () => {
  await serve?.stop().catch(() => undefined);
  // LK_E2E_KEEP_LOGS=<dir>: keep serve's logs and the audit chain for a post-mortem (the fleet dir is removed).
  const keep = process.env.LK_E2E_KEEP_LOGS;
  if (keep !== undefined && fleet !== undefined) {
    await mkdir(keep, { recursive: true });
    for (const f of await readdir(fleet.dir)) if (f.startsWith("serve-")) await copyFile(join(fleet.dir, f), join(keep, f));
    await copyFile(fleet.auditPath, join(keep, "audit.jsonl")).catch(() => undefined);
  }
  await relay?.stop().catch(() => undefined);
  await fleet?.stop();
});

describe("queue-driven scaling against the peers' failures", () => {
  it("garm #47: with max=2, five queued jobs all run, never more than 2 lanes; after the scale-down a later job still gets a lane", async () => {
    const t0 = Date.now();
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await queue("max-47", 4000, `gh47-${i + 1}`));
    const done = expectJobsSucceeded(fleet, ids, 240_000);
    const peak = await peakWhile(async () => (await liveLanes(fleet, "max-47")).length, done);
    await done;
    expect(peak).toBeGreaterThanOrEqual(1);
    expect(peak).toBeLessThanOrEqual(2);
    const jobs = await jobsById(fleet, ids);
    report(`garm#47: 5 jobs on max=2: peak lanes ${peak}, queue waits ${jobs.map((j) => jobTimes(j).waitS.toFixed(1)).join(", ")} s, scale-ups ${(await scaleUps("max-47", t0)).length}`);

    // No demand left: the pool goes back to min (0) after scaleDownAfter, through the drain protocol.
    await waitLiveLanes("max-47", 0);
    const afterScaleDown = Date.now();

    // garm #47's second half: a job queued when the pool is at 0 still gets a lane.
    const later = await queue("max-47", 1000, "gh47-later");
    await expectJobsSucceeded(fleet, [later], 120_000);
    const [lj] = await jobsById(fleet, [later]);
    expect((await scaleUps("max-47", afterScaleDown)).length).toBeGreaterThanOrEqual(1);
    report(`garm#47: job queued after the scale-down waited ${jobTimes(lj!).waitS.toFixed(1)} s (lane ${laneOf(lj!)})`);
  });

  it("garm #73 / ARC #1219: duplicate `queued` deliveries create no extra lanes, and the idle lane takes a job before any lane is created", async () => {
    const minLane = (await liveLanes(fleet, "dup-73"))[0];
    expect(minLane).toBeDefined();
    await eventually(async () => (await fleet.github.control.listRunners()).some((r) => r.name === minLane && r.status === "online"), `${minLane} online`);
    const before = (await createdLanes(fleet, "dup-73")).length;

    // One job, its `queued` event delivered four times: twice redelivered (same X-GitHub-Delivery), once resent as
    // a new delivery. The idle min lane takes it; nothing is created.
    const t1 = Date.now();
    const one = await queue("dup-73", 3000, "dup-1");
    const d1 = await relay.waitFor("queued", one);
    await relay.redeliver(d1.id);
    await relay.redeliver(d1.id);
    await relay.resendAsNew(d1.id);
    await expectJobsSucceeded(fleet, [one], 120_000);
    const [j1] = await jobsById(fleet, [one]);
    expect(laneOf(j1!)).toBe(minLane);
    // Give the reconciler a few cycles to act on the duplicates, if it were going to.
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS + REST_INTERVAL_MS));
    expect(await scaleUps("dup-73", t1)).toEqual([]);

    // A burst of three, each `queued` delivered three times: wanted = 3 (clamped to max 3), one lane exists, so
    // exactly two are created, not two per delivery.
    const t2 = Date.now();
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push(await queue("dup-73", 12_000, `dup-burst-${i + 1}`));
    for (const id of ids) {
      const d = await relay.waitFor("queued", id);
      await relay.redeliver(d.id);
      await relay.resendAsNew(d.id);
    }
    const done = expectJobsSucceeded(fleet, ids, 180_000);
    const peak = await peakWhile(async () => (await liveLanes(fleet, "dup-73")).length, done);
    await done;
    const ups = await scaleUps("dup-73", t2);
    expect(ups.map((u) => u.action)).toEqual(["create", "create"]);
    expect(peak).toBeLessThanOrEqual(3);
    expect((await createdLanes(fleet, "dup-73")).length).toBe(before + 2);
    const jobs = await jobsById(fleet, ids);
    expect(jobs.map(laneOf)).toContain(minLane);
    report(`garm#73: 1 job x4 deliveries -> 0 creates (ran on the idle lane); 3 jobs x3 deliveries -> ${ups.length} creates, peak ${peak} lanes`);
    // Back to the floor afterwards.
    await waitLiveLanes("dup-73", 1);
  });

  it("ARC #2466 / garm #590: a lost `queued` and a lost `completed` are repaired by the REST pass: the job runs, and the stale job keeps no lane", async () => {
    // Lost `queued`: serve never hears of the job from a webhook; the REST pass finds it.
    relay.dropNext("queued", { label: "scale-2466" });
    const t0 = Date.now();
    const a = await queue("lost-2466", 2000, "lost-queued");
    await expectJobsSucceeded(fleet, [a], 120_000);
    expect(relay.of("queued", a).map((d) => d.fate)).toEqual(["dropped"]);
    const ups = await scaleUps("lost-2466", t0);
    expect(ups.length).toBeGreaterThanOrEqual(1);
    const [ja] = await jobsById(fleet, [a]);
    // Sanity bound tied to what was measured: one REST interval to find the job, one lane start, and slack for
    // the cycle and the runner's first poll; a repair that waits for something else (a budget, a back-off) fails.
    const laneStartS = ((ups[0]!.succeededAt ?? ups[0]!.plannedAt) - ups[0]!.plannedAt) / 1000;
    expect(jobTimes(ja!).waitS).toBeLessThan(REST_INTERVAL_MS / 1000 + laneStartS + 20);
    report(`ARC#2466: job whose queued delivery was lost waited ${jobTimes(ja!).waitS.toFixed(1)} s (REST pass every ${REST_INTERVAL_MS} ms)`);

    // Lost `completed`: the job store would keep the job in progress, and the lane busy, forever; the REST pass
    // sees it completed and the pool scales down to 0.
    relay.dropNext("completed", { label: "scale-2466" });
    const b = await queue("lost-2466", 2000, "lost-completed");
    await expectJobsSucceeded(fleet, [b], 120_000);
    await eventually(() => Promise.resolve(relay.of("completed", b).length > 0), `the completed delivery of job ${b}`, 30_000, 200);
    expect(relay.of("completed", b).map((d) => d.fate)).toEqual(["dropped"]);
    const tDone = Date.now();
    await waitLiveLanes("lost-2466", 0);
    report(`garm#590: after a lost completed delivery the pool scaled down to 0 in ${((Date.now() - tDone) / 1000).toFixed(1)} s (scaleDownAfter 4s)`);
  });

  it("terraform-aws-github-runner #933: the lane made for job A takes job B; A still gets a lane and runs alongside", async () => {
    const t0 = Date.now();
    // B first (older), its `queued` lost; then A, delivered. A's webhook starts the scale-up; GitHub hands the
    // first new runner the oldest job, B.
    relay.dropNext("queued", { label: "scale-933" });
    const b = await queue("race-933", 20_000, "race-B");
    const a = await queue("race-933", 5000, "race-A");
    const da = await relay.waitFor("queued", a);
    await expectJobsSucceeded(fleet, [b, a], 180_000);
    const byId = new Map((await jobsById(fleet, [a, b])).map((j) => [j.id, j]));
    const ja = byId.get(a);
    const jb = byId.get(b);
    // Two new lanes for two jobs (re-arming a lane that finished its job adds none).
    const ups = (await scaleUps("race-933", t0)).filter((u) => u.action === "create");
    expect(ups.length).toBe(2);
    // The first scale-up came after A's delivery (its cause), not from a periodic pass long after.
    expect(ups[0]!.plannedAt).toBeGreaterThanOrEqual(da.receivedAt);
    expect(laneOf(ja!)).not.toBe(laneOf(jb!));
    // Both ran on the lanes this scale-up made (a re-armed ephemeral runner may carry a suffix on its lane id).
    const lanes = ups.map((u) => u.laneId);
    const onNew = (j: JobView): boolean => lanes.some((l) => laneOf(j) === l || laneOf(j).startsWith(`${l}-`));
    expect(onNew(ja!) && onNew(jb!)).toBe(true);
    // A did not wait for B to finish: it ran on its own lane while B ran.
    expect(Date.parse(ja!.startedAt!)).toBeLessThan(Date.parse(jb!.completedAt!));
    const firstLane = ups[0]!.laneId;
    report(
      `tf-aws#933: first create (${firstLane}, ${((ups[0]!.plannedAt - da.receivedAt) / 1000).toFixed(1)} s after A's delivery) ran job ${laneOf(jb!).startsWith(firstLane) ? "B" : "A"}; ` +
        `A waited ${jobTimes(ja!).waitS.toFixed(1)} s on ${laneOf(ja!)}, B waited ${jobTimes(jb!).waitS.toFixed(1)} s on ${laneOf(jb!)}`,
    );
    await waitLiveLanes("race-933", 0);
  });

  it("garm #86 / #270: no fixed wait before scale-up: each job of a dependent chain waits one lane start, and the scale-up follows the webhook", async () => {
    // A long reconcile interval and REST interval: any scale-up within seconds of a delivery was the webhook's.
    await restartServe(120_000, 120_000);
    const rows: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await queue("chain-86", 1000, `chain-${i + 1}`);
      const d = await relay.waitFor("queued", id);
      await expectJobsSucceeded(fleet, [id], 120_000);
      const [j] = await jobsById(fleet, [id]);
      const up = (await scaleUps("chain-86", d.receivedAt - 500))[0];
      const wait = jobTimes(j!).waitS;
      if (up === undefined) {
        // The lane the previous job left armed and idle took it: no scale-up needed, no wait.
        rows.push(`chain-${i + 1}: queued->started ${wait.toFixed(1)} s (idle lane ${laneOf(j!)})`);
        expect(wait).toBeLessThan(10);
        continue;
      }
      const laneStartS = ((up.succeededAt ?? up.plannedAt) - up.plannedAt) / 1000;
      const reactS = (up.plannedAt - d.receivedAt) / 1000;
      rows.push(`chain-${i + 1}: delivery->${up.action} ${reactS.toFixed(1)} s, lane start ${laneStartS.toFixed(1)} s, queued->started ${wait.toFixed(1)} s`);
      // Far below the 120 s intervals: the webhook started it.
      expect(reactS).toBeLessThan(15);
      // Sanity bound: the job waited about one lane start, plus the runner's first poll, not a fixed delay on top.
      expect(wait).toBeLessThan(laneStartS + 15);
    }
    for (const r of rows) report(`garm#86: ${r}`);
  });

  it("no job of the file was cancelled or failed; every operation has planned, started and a terminal record; unmanaged runners untouched", async () => {
    // serve finishes its cycle on SIGTERM, so no operation is cut in the middle of its records.
    await serve?.stop();
    serve = undefined;
    const jobs = await jobsById(fleet, allJobs);
    expect(jobs.filter((j) => j.conclusion !== "success").map((j) => `${j.name}:${j.status}:${j.conclusion}`)).toEqual([]);
    expectCompleteOperations(await auditChain(fleet.auditPath));
    await expectUnmanagedUntouched(fleet);
  });
});
