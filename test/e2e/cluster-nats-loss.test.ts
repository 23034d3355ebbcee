// Acceptance (issue 17): lanekeeper on a 3-node NATS JetStream cluster while NATS goes away, with two
// `lanekeeper serve` processes running throughout, a real fleet (two systemd sandbox hosts) and jobs running on
// lanes during every disruption. One fleet, cluster and pair of serves for the file; scenarios in order, each
// starting from the fleet the previous one left:
// 1. kill -9 one NATS node (not the one leading the lane records' stream KV_lk_lanes);
// 2. kill -9 the node leading KV_lk_lanes;
// 3. stop the whole cluster for 10 s and start it again.
// During each, the policy's lane count is changed (each serve reloads its file at once), and must be acted on.
// After each: both serves still run, the fleet converges to the policy (GitHub's registrations and the lane records
// match it, nothing left to do, no orphan), no job was cancelled, no lane is duplicated or orphaned, no intent ran
// twice (the agents' audit chains), and `lanekeeper audit verify --stream` passes. docs/cluster.md, "When NATS goes
// away", describes what the operator sees; the commands it names (`lanekeeper cluster replicas`) are run here.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { copyFile, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COORDINATOR_BIN, FLEET_NATS_PASSWORD_ENV, type Fleet, type NatsClusterHandle } from "@lanekeeper/harness";
import type { AuditRecord } from "@lanekeeper/shared";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { KvLaneStore } from "../../packages/coordinator/src/lane-store-kv/kv-lane-store.js";
import type { StoredLaneRecord } from "../../packages/coordinator/src/observe/lane-record.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";
import { auditChain, describeCli, e2eFleet, eventually, managedRunners, pendingActions, planJson } from "./e2e-fixture.js";

const SCOPE = "acme/api";
const POOL = "linux-x64";
const LABELS = ["linux", "lanes-nats-loss"];
const HOSTS = ["build01", "build02"];
const LOCK_TTL_MS = 3_000;
/** Long enough that each job runs through its whole disruption. */
const JOB_MS = 30_000;
/** The stream of the lane-record bucket. */
const LANES_STREAM = "KV_lk_lanes";

let fleet: Fleet;
let cluster: NatsClusterHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let store: KvLaneStore;
let lock: LeaderLock;
const jobs: number[] = [];

/** One `lanekeeper serve` child process with its own policy copy (its own local audit chain) and log. */
interface Serve {
  readonly instance: string;
  readonly policyPath: string;
  readonly logPath: string;
  readonly proc: ChildProcess;
}
const serves: Serve[] = [];

/** Write `instance`'s copy of the fleet policy (its own audit file), atomically: `serve` watches it. */
async function writeServePolicy(instance: string): Promise<string> {
  const doc = parse(await readFile(fleet.policyPath, "utf8")) as { coordinator: Record<string, unknown> };
  doc.coordinator.auditFile = join(fleet.dir, `audit-${instance}.jsonl`);
  const policyPath = join(fleet.dir, `serve-${instance}.yaml`);
  await writeFile(`${policyPath}.tmp`, stringify(doc));
  await rename(`${policyPath}.tmp`, policyPath);
  return policyPath;
}

async function startServe(instance: string): Promise<Serve> {
  const policyPath = await writeServePolicy(instance);
  const logPath = join(fleet.dir, `serve-${instance}.log`);
  const fd = openSync(logPath, "a");
  const proc = spawn(
    process.execPath,
    [COORDINATOR_BIN, "serve", "--policy", policyPath, "--interval", "1s", "--lock-ttl", `${LOCK_TTL_MS / 1000}s`, "--inventory-wait", "5s"],
    // At info level: leadership changes and the fresh-view gate are what the scenarios look for in the logs.
    { env: { ...process.env, ...fleet.coordinatorEnv, LANEKEEPER_INSTANCE: instance, LANEKEEPER_LOG_LEVEL: "info" }, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  const s: Serve = { instance, policyPath, logPath, proc };
  serves.push(s);
  return s;
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once("exit", () => r()));
}

async function stopServes(): Promise<void> {
  for (const s of serves) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGTERM");
  await Promise.all(serves.map((s) => Promise.race([exited(s.proc), new Promise((r) => setTimeout(r, 60_000))])));
  for (const s of serves) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
}

/** Neither serve exited: NATS going away is never a reason for the daemon to stop. */
function expectServesRunning(): void {
  for (const s of serves) expect({ instance: s.instance, exitCode: s.proc.exitCode, signal: s.proc.signalCode }).toEqual({ instance: s.instance, exitCode: null, signal: null });
}

/** The policy asks for `count` lanes over both hosts: the fleet's file (for the CLI) and each serve's copy. */
async function setLanes(count: number): Promise<void> {
  await fleet.editPolicy((doc) => {
    doc.lanes = [{ scope: SCOPE, pool: POOL, count, hosts: HOSTS }];
  });
  for (const s of serves) await writeServePolicy(s.instance);
}

/** Queue a job for the pool and wait until a lane runs it; returns its id. */
async function runJob(durationMs = JOB_MS): Promise<number> {
  const { id } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-nats-loss"], durationMs });
  jobs.push(id);
  await eventually(async () => (await fleet.github.control.getJob(id)).status === "in_progress", `job ${id} to run`, 120_000, 300);
  return id;
}

async function records(): Promise<StoredLaneRecord[]> {
  return [...(await store.list())];
}

/** The index of the node leading a stream now (-1 while it has none). */
async function streamLeader(stream: string): Promise<number> {
  return cluster.nodeIndex((await jsm.streams.info(stream)).cluster?.leader ?? "");
}

/** `lanekeeper cluster replicas --json`: each coordinator stream's replicas, leader and caught-up peers. */
async function clusterReplicas(): Promise<{ stream: string; exists: boolean; replicas?: number; leader?: string; current?: number }[]> {
  const r = await fleet.lanekeeper(["cluster", "replicas", "--json"]);
  expect(r.code, describeCli(r)).toBe(0);
  return (r.json as { streams: { stream: string; exists: boolean; replicas?: number; leader?: string; current?: number }[] }).streams.filter((s) => s.exists);
}

/** What a timed-out wait was looking at. */
async function state(): Promise<string> {
  const recs = (await records().catch(() => [])).map((r) => `${r.laneId}@${r.hostId}:${r.state}`);
  const runners = (await managedRunners(fleet)).map((r) => `${r.name}:${r.status}${r.busy ? ":busy" : ""}`);
  const logs: string[] = [];
  for (const s of serves) logs.push(`--- ${s.instance}:\n${(await readFile(s.logPath, "utf8").catch(() => "")).split("\n").slice(-25).join("\n")}`);
  return `${JSON.stringify({ recs, runners, leader: (await lock.holderInfo().catch(() => undefined))?.instance })}\n${logs.join("\n")}`;
}

/** Invariant 4 on every host: an intent id executed at most once; a lane created and removed at most once each. */
async function expectNoIntentTwice(): Promise<void> {
  for (const a of fleet.agents) {
    const recs: AuditRecord[] = await auditChain(join(a.stateDir, "audit.log"));
    const executed = recs.filter((r) => r.phase === "succeeded" && r.intentId !== undefined);
    expect(executed.length, `${a.hostId}: the agent's audit chain records what it carried out`).toBeGreaterThan(0);
    const ids = executed.map((r) => r.intentId);
    expect(new Set(ids).size, `${a.hostId}: an intent executed twice`).toBe(ids.length);
    for (const action of ["create", "remove"]) {
      const lanes = executed.filter((r) => r.action === action && r.laneId !== undefined).map((r) => r.laneId);
      expect(new Set(lanes).size, `${a.hostId}: a lane ${action}d twice`).toBe(lanes.length);
    }
  }
}

/** Every job queued so far ran to its end on a lane (none cancelled, none lost). */
async function expectJobsSucceeded(): Promise<void> {
  const mine = await eventually(
    async () => {
      const all = (await fleet.github.control.listJobs()).filter((j) => jobs.includes(j.id));
      return all.length === jobs.length && all.every((j) => j.status === "completed") ? all : undefined;
    },
    "every job completed",
    180_000,
    1000,
  );
  expect(mine.map((j) => `${j.id}:${j.conclusion}`).sort()).toEqual(jobs.map((id) => `${id}:success`).sort());
}

/**
 * The fleet matches the policy (`count` lanes over both hosts): that many registrations online, one active record
 * each and no other record, no lane duplicated, nothing left to do, no orphan or foreign runner; every job so far
 * succeeded; no intent ran twice; the audit stream verifies.
 */
async function expectConverged(count: number, timeoutMs = 240_000): Promise<void> {
  try {
    await eventually(
      async () => {
        const online = (await managedRunners(fleet)).filter((r) => r.status === "online" && !r.labels.includes("lk-draining"));
        const recs = await records();
        return (
          online.length === count &&
          recs.length === count &&
          recs.every((r) => r.state === "active" && HOSTS.includes(r.hostId)) &&
          online.map((r) => r.name).sort().join() === recs.map((r) => r.laneId).sort().join()
        );
      },
      `${count} lanes`,
      timeoutMs,
      1000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await state()}`);
  }
  expect(await pendingActions(fleet)).toEqual([]);
  const plan = await planJson(fleet);
  expect(plan.classification.lanes.orphaned ?? 0).toBe(0);
  expect(plan.classification.foreign).toEqual([]);
  // Registrations: exactly one per record (no duplicate lane id), none without a record, no record without one.
  const names = (await managedRunners(fleet)).map((r) => r.name).sort();
  expect(new Set(names).size).toBe(names.length);
  expect(names).toEqual((await records()).map((r) => r.laneId).sort());
  await expectJobsSucceeded();
  await expectNoIntentTwice();
  const verify = await fleet.lanekeeper(["audit", "verify", "--stream", "--json"]);
  expect(verify.code, describeCli(verify)).toBe(0);
  expectServesRunning();
}

/** The serves' log lines written from now on (read when the returned function is called). */
async function logsFromNow(): Promise<{ of: (s: Serve) => Promise<string>; all: () => Promise<string> }> {
  const marks = await Promise.all(serves.map(async (s) => (await readFile(s.logPath, "utf8")).length));
  const of = async (s: Serve): Promise<string> => (await readFile(s.logPath, "utf8")).slice(marks[serves.indexOf(s)]);
  return { of, all: async () => (await Promise.all(serves.map(of))).join("\n") };
}

/**
 * Codes an action under way may stop with (in a safe state, resumed by a later cycle) for want of NATS. The leader
 * lock lives in NATS too: a serve whose renewal went unanswered may lose the lock to the other, and its actions then
 * stop at the fence (FENCING_TOKEN_STALE), which only ever refuses a superseded process.
 */
const NATS_FAILURES = ["OPERATION_LEASE_LOST", "FENCING_TOKEN_STALE", "LANE_STORE_UNAVAILABLE", "NATS_UNAVAILABLE", "SEQUENCE_ALLOCATION_FAILED"];

/** The codes of the actions that failed, from the serves' log lines. */
function failedActionCodes(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => l.includes('"msg":"action failed"'))
    .map((l) => (JSON.parse(l) as { code?: string }).code ?? "");
}

/**
 * Every action that failed during the disruption stopped for want of NATS (and the fleet converged, so a later cycle
 * resumed it), never for another reason (a guard, a job).
 */
function expectOnlyNatsFailures(log: string): void {
  for (const code of failedActionCodes(log)) expect(NATS_FAILURES).toContain(code);
}

/** Bring a halted node back with its store; wait until every stream has all its peers caught up again. */
async function resumeNode(i: number): Promise<void> {
  await cluster.nodes[i]!.resume();
  await cluster.waitForJetStream();
  await eventually(async () => (await clusterReplicas()).every((s) => s.leader !== undefined && s.current === s.replicas), "every stream caught up", 120_000, 1000);
}

/** Wait until every coordinator stream has a leader on a live node (not on `down`), as `cluster replicas` shows. */
async function expectLeadersOff(down: number): Promise<void> {
  const name = cluster.serverName(down);
  await eventually(
    async () => {
      const rows = await clusterReplicas();
      return rows.length > 0 && rows.every((s) => s.leader !== undefined && s.leader !== name && (s.current ?? 0) < (s.replicas ?? 0)) ? rows : undefined;
    },
    `every stream led by a node other than ${name}, one peer short`,
    90_000,
    1000,
  );
}

beforeAll(async () => {
  fleet = await e2eFleet({
    natsCluster: 3,
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: "build02", runtime: "systemd", capacity: 4 },
    ],
    pools: { [POOL]: { backend: "systemd", labels: LABELS } },
    lanes: [{ scope: SCOPE, pool: POOL, count: 2, hosts: HOSTS }],
    handmade: { container: false },
  });
  cluster = fleet.natsCluster!;
  const policy = parse(await readFile(fleet.policyPath, "utf8")) as { coordinator: { natsUser: string } };
  // The test's own view of JetStream outlives the whole-cluster outage (reconnects for ever).
  nc = await connect({ servers: cluster.urls, user: policy.coordinator.natsUser, pass: fleet.coordinatorEnv[FLEET_NATS_PASSWORD_ENV]!, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  jsm = await nc.jetstreamManager();
  const first = await fleet.lanekeeper(["apply", "--yes", "--json"]);
  expect(first.code, describeCli(first)).toBe(0);
  store = await KvLaneStore.open(nc.jetstream());
  // Only reads the holder; the bucket gets the serves' TTL and the policy's replicas, should it not exist yet.
  lock = await LeaderLock.open(nc.jetstream(), { ttlMs: LOCK_TTL_MS, instance: "probe", replicas: 3 });
  await startServe("serve-a");
  await startServe("serve-b");
  await eventually(async () => (await lock.holderInfo())?.instance, "a leader", 60_000, 200);
  await expectConverged(2);
}, 600_000);

afterAll(async () => {
  await stopServes().catch(() => undefined);
  // Keep the serves' logs for a look after the run (the fleet's directory goes away with it).
  const keep = process.env.LK_E2E_KEEP_LOGS;
  if (keep !== undefined && fleet !== undefined) for (const s of serves) await copyFile(s.logPath, join(keep, `${s.instance}.log`)).catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await fleet?.stop();
});

describe("NATS going away under a running fleet, two serves and jobs", () => {
  it("kill -9 of one NATS node (not the lane records' leader), a lane added meanwhile: converges, nothing lost or doubled", async () => {
    await runJob();
    const logs = await logsFromNow();
    const victim = ((await streamLeader(LANES_STREAM)) + 1) % 3;
    await cluster.nodes[victim]!.halt({ signal: "SIGKILL" });
    await setLanes(3);
    // What `lanekeeper cluster replicas` shows meanwhile: every stream led by a live node, one peer short.
    await expectLeadersOff(victim);
    await expectConverged(3);
    await resumeNode(victim);
    await expectConverged(3);
    expectOnlyNatsFailures(await logs.all());
  }, 600_000);

  it("kill -9 of the node leading the lane records (KV_lk_lanes) while lanes are being removed, the count changed again meanwhile: a new stream leader, converges", async () => {
    await runJob();
    const logs = await logsFromNow();
    const victim = await eventually(async () => {
      const i = await streamLeader(LANES_STREAM);
      return i >= 0 ? i + 1 : undefined;
    }, `a leader of ${LANES_STREAM}`, 30_000, 200).then((i) => i - 1);
    // Scale down to one lane: the idle lanes' drains and removals start ...
    await setLanes(1);
    await eventually(async () => {
      const recs = await records();
      return recs.length < 3 || recs.some((r) => r.state !== "active");
    }, "a removal under way", 60_000, 100);
    // ... and the node leading their records dies in the middle; meanwhile the policy asks for two lanes.
    await cluster.nodes[victim]!.halt({ signal: "SIGKILL" });
    await setLanes(2);
    await eventually(async () => {
      const i = await streamLeader(LANES_STREAM).catch(() => -1);
      return i >= 0 && i !== victim;
    }, `a new leader of ${LANES_STREAM}`, 60_000, 500);
    await expectLeadersOff(victim);
    await expectConverged(2);
    await resumeNode(victim);
    await expectConverged(2);
    expectOnlyNatsFailures(await logs.all());
  }, 600_000);

  it("the whole cluster stopped for 10 s while lanes are being created, the count changed meanwhile: nothing acts while it is away, then the serves lead again and converge", async () => {
    await runJob();
    const holder = (await lock.holderInfo())?.instance;
    const leaderBefore = serves.find((s) => s.instance === holder);
    expect(leaderBefore, `the leader ${holder ?? "(none)"} is one of the serves`).toBeDefined();
    const logs = await logsFromNow();
    // Two creates under way (their runners cannot reach GitHub yet, so each waits to see its runner online) ...
    await fleet.github.control.setFaults({ refuseSessions: true });
    let known: string[] = [];
    let before: string[] = [];
    try {
      await setLanes(4);
      await eventually(async () => (await records()).filter((r) => r.state === "creating").length === 2, "two creates under way", 60_000, 200);
      known = (await records()).map((r) => r.laneId);
      before = (await managedRunners(fleet)).map((r) => r.name);
      // ... when every NATS node stops; meanwhile the policy asks for three lanes.
      await cluster.haltAll({ signal: "SIGKILL" });
    } finally {
      await fleet.github.control.clearFaults();
    }
    const downAt = Date.now();
    await setLanes(3);
    // The outage lasts 10 s (the disruption itself, not a wait for a condition).
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downAt))));
    // Nothing was created or removed meanwhile: every registration is of a lane recorded before the outage (the
    // creates under way may have registered their runners: their intents were sent before), and none is gone.
    const during = (await managedRunners(fleet)).map((r) => r.name);
    expect(during.filter((n) => !known.includes(n))).toEqual([]);
    expect(before.filter((n) => !during.includes(n))).toEqual([]);
    await cluster.resumeAll();
    await expectConverged(3);
    // What the operator sees in the serves' logs: the leader stepped down, and a leader acted again only with a
    // fresh view.
    expect(await logs.of(leaderBefore!)).toMatch(/leadership lost/);
    const all = await logs.all();
    expect(all).toMatch(/NATS trouble: not acting until the view is fresh again/);
    expect(all).toMatch(/fresh inventories from every host since NATS came back; acting again|no inventory since NATS came back from some hosts/);
    // An action under way when NATS went away stopped in a safe state for want of NATS (and was resumed above).
    expectOnlyNatsFailures(all);
  }, 600_000);
});
