// Acceptance (issue 17): lanekeeper on a 3-node NATS JetStream cluster, with two `lanekeeper serve` processes
// sharing it and a real fleet running jobs. One shared fleet and cluster for the file, a 3 s leader lease:
// 1. kill -9 the leading serve while an apply creates, drains and removes lanes (a move to another host, one lane
//    busy with a job): the other serve leads within the lease and finishes the move;
// 2. freeze the leader (SIGSTOP) past its lease while it drains a busy lane; the other takes over; SIGCONT the old
//    leader: it does not act (its writes and intents are refused with FENCING_TOKEN_STALE, in its audit chain);
// (Losing NATS nodes is covered by test/integration/nats-cluster.test.ts; with nats-server 2.9 a coordinator opening
// while a node is down can time out, so the fleet-level node-loss scenarios are not here yet.)
// After each: the fleet converges to the policy, no job was cancelled, no lane is duplicated or orphaned, no intent
// ran twice (the agents' audit chains), and `lanekeeper audit verify --stream` passes.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COORDINATOR_BIN, FLEET_NATS_PASSWORD_ENV, type Fleet } from "@lanekeeper/harness";
import type { AuditRecord } from "@lanekeeper/shared";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { KvLaneStore } from "../../packages/coordinator/src/lane-store-kv/kv-lane-store.js";
import type { StoredLaneRecord } from "../../packages/coordinator/src/observe/lane-record.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";
import { auditChain, describeCli, e2eFleet, eventually, managedRunners, pendingActions, planJson } from "./e2e-fixture.js";

const SCOPE = "acme/api";
const POOL = "linux-x64";
const LABELS = ["linux", "lanes-cluster"];
const LOCK_TTL = "3s";
const JOB_MS = 15_000;

let fleet: Fleet;
let nc: NatsConnection;
let store: KvLaneStore;
let lock: LeaderLock;
const jobs: number[] = [];

/** One `lanekeeper serve` child process with its own policy copy (its own local audit chain) and log. */
interface Serve {
  readonly instance: string;
  readonly auditPath: string;
  readonly logPath: string;
  proc: ChildProcess;
}
const serves = new Map<string, Serve>();

async function servePolicy(instance: string): Promise<{ policyPath: string; auditPath: string }> {
  const doc = parse(await readFile(fleet.policyPath, "utf8")) as { coordinator: Record<string, unknown> };
  const auditPath = join(fleet.dir, `audit-${instance}.jsonl`);
  doc.coordinator.auditFile = auditPath;
  const policyPath = join(fleet.dir, `serve-${instance}.yaml`);
  await writeFile(policyPath, stringify(doc));
  return { policyPath, auditPath };
}

/** Start `lanekeeper serve` as `instance` (reading the policy as it is now: serve reads it at start). */
async function startServe(instance: string): Promise<Serve> {
  const { policyPath, auditPath } = await servePolicy(instance);
  const logPath = join(fleet.dir, `serve-${instance}.log`);
  const fd = openSync(logPath, "a");
  const proc = spawn(
    process.execPath,
    [COORDINATOR_BIN, "serve", "--policy", policyPath, "--interval", "1s", "--lock-ttl", LOCK_TTL, "--inventory-wait", "3s"],
    { env: { ...process.env, ...fleet.coordinatorEnv, LANEKEEPER_INSTANCE: instance }, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  const s: Serve = { instance, auditPath, logPath, proc };
  serves.set(instance, s);
  return s;
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once("exit", () => r()));
}

/** SIGTERM every serve (each finishes its cycle and releases the lock) and wait for them. */
async function stopServes(): Promise<void> {
  for (const s of serves.values()) {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
    s.proc.kill("SIGCONT");
    s.proc.kill("SIGTERM");
  }
  await Promise.all([...serves.values()].map((s) => Promise.race([exited(s.proc), new Promise((r) => setTimeout(r, 60_000))])));
  for (const s of serves.values()) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
  serves.clear();
}

/** The instance holding the leader lock now, if any. */
async function leader(): Promise<string | undefined> {
  return (await lock.holderInfo())?.instance;
}

async function setLanes(count: number, hosts: string[]): Promise<void> {
  await fleet.editPolicy((doc) => {
    doc.lanes = [{ scope: SCOPE, pool: POOL, count, hosts }];
  });
}

/** Queue a job for the pool; returns its id. */
async function queueJob(durationMs = JOB_MS): Promise<number> {
  const { id } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-cluster"], durationMs });
  jobs.push(id);
  return id;
}

async function runningOn(jobId: number): Promise<number> {
  return eventually(async () => {
    const j = await fleet.github.control.getJob(jobId);
    return j.status === "in_progress" && j.runnerId !== null ? j.runnerId : undefined;
  }, `job ${jobId} to run`);
}

async function records(): Promise<StoredLaneRecord[]> {
  return [...(await store.list())];
}

/**
 * The fleet matches the policy: `count` managed lanes online, all on `hosts`, one record each, nothing left to do,
 * no orphan; every job so far succeeded (none cancelled).
 */
async function expectConverged(count: number, hosts: string[], timeoutMs = 240_000): Promise<void> {
  await eventually(
    async () => {
      const online = (await managedRunners(fleet)).filter((r) => r.status === "online");
      const recs = await records();
      const ok =
        online.length === count &&
        recs.length === count &&
        recs.every((r) => r.state === "active" && hosts.includes(r.hostId)) &&
        new Set(online.map((r) => r.name)).size === count;
      return ok;
    },
    `${count} lanes on ${hosts.join(",")}`,
    timeoutMs,
    1000,
  );
  expect(await pendingActions(fleet)).toEqual([]);
  const plan = await planJson(fleet);
  expect(plan.classification.lanes.orphaned ?? 0).toBe(0);
  expect(plan.classification.foreign).toEqual([]);
  // Registrations: exactly one per record, none without a record.
  const names = (await managedRunners(fleet)).map((r) => r.name).sort();
  expect(names).toEqual((await records()).map((r) => r.laneId).sort());
  await expectJobsDone();
  await expectNoIntentTwice();
  const verify = await fleet.lanekeeper(["audit", "verify", "--stream", "--json"]);
  expect(verify.code, describeCli(verify)).toBe(0);
}

async function expectJobsDone(): Promise<void> {
  await eventually(
    async () => {
      const all = await fleet.github.control.listJobs();
      const mine = all.filter((j) => jobs.includes(j.id));
      return mine.length === jobs.length && mine.every((j) => j.status === "completed") ? mine : undefined;
    },
    "every job completed",
    180_000,
    1000,
  ).then((mine) => {
    for (const j of mine) expect(j.conclusion, `job ${j.id}`).toBe("success");
  });
}

/** Invariant 4 on every host: an intent id executed at most once; a lane created and removed at most once each. */
async function expectNoIntentTwice(): Promise<void> {
  for (const a of fleet.agents) {
    const recs: AuditRecord[] = await auditChain(join(a.stateDir, "audit.log"));
    const executed = recs.filter((r) => r.phase === "succeeded" && r.intentId !== undefined);
    const ids = executed.map((r) => r.intentId);
    expect(new Set(ids).size, `${a.hostId}: an intent executed twice`).toBe(ids.length);
    for (const action of ["create", "remove"]) {
      const lanes = executed.filter((r) => r.action === action && r.laneId !== undefined).map((r) => r.laneId);
      expect(new Set(lanes).size, `${a.hostId}: a lane ${action}d twice`).toBe(lanes.length);
    }
  }
}

beforeAll(async () => {
  fleet = await e2eFleet({
    natsCluster: 3,
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: "build02", runtime: "systemd", capacity: 4 },
    ],
    pools: { [POOL]: { backend: "systemd", labels: LABELS } },
    lanes: [{ scope: SCOPE, pool: POOL, count: 2, hosts: ["build01"] }],
    handmade: { container: false },
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 60_000 },
  });
  const policy = parse(await readFile(fleet.policyPath, "utf8")) as { coordinator: { natsUser: string } };
  nc = await connect({ servers: fleet.natsCluster!.urls, user: policy.coordinator.natsUser, pass: fleet.coordinatorEnv[FLEET_NATS_PASSWORD_ENV]! });
  const first = await fleet.lanekeeper(["apply", "--yes", "--json"]);
  expect(first.code, describeCli(first)).toBe(0);
  store = await KvLaneStore.open(nc.jetstream());
  // Only reads the holder; the bucket gets the serves' TTL and the policy's replicas, should it not exist yet.
  lock = await LeaderLock.open(nc.jetstream(), { ttlMs: 3_000, instance: "probe", replicas: 3 });
  await expectConverged(2, ["build01"]);
}, 600_000);

afterAll(async () => {
  await stopServes().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await fleet?.stop();
});

describe("a 3-node NATS cluster and two coordinators", () => {
  it("kill -9 of the leader in the middle of a move (created, draining, to remove): the other leads and finishes it", async () => {
    const busy = await runningOn(await queueJob(40_000));
    await setLanes(2, ["build02"]);
    const a = await startServe("serve-a");
    const b = await startServe("serve-b");
    const first = await eventually(leader, "a leader", 60_000, 200);
    // In the middle: the new lanes are created, the busy lane's drain waits for its job, nothing is removed yet.
    await eventually(
      async () => {
        const recs = await records();
        return recs.some((r) => r.runnerId === busy && r.state === "draining") && recs.filter((r) => r.hostId === "build02" && r.state === "active").length === 2;
      },
      "the new lanes active and the busy lane draining",
      120_000,
      200,
    );
    const killed = first === a.instance ? a : b;
    killed.proc.kill("SIGKILL");
    await exited(killed.proc);
    const t0 = Date.now();
    const next = await eventually(async () => {
      const l = await leader();
      return l !== undefined && l !== killed.instance ? l : undefined;
    }, "another leader", 30_000, 200);
    expect(next).toBe(killed === a ? b.instance : a.instance);
    // Within the lease (3 s) plus a renewal round.
    expect(Date.now() - t0).toBeLessThan(3_000 + 5_000);
    await expectConverged(2, ["build02"]);
    await stopServes();
  }, 600_000);
});
