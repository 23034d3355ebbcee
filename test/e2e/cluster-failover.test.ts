// Acceptance (issue 17): lanekeeper on a 3-node NATS JetStream cluster, with two `lanekeeper serve` processes
// sharing it and a real fleet running jobs. One shared fleet and cluster for the file, a 3 s leader lease, scenarios
// in order (each starts from the fleet the previous one left):
// 1. kill -9 the leading serve while an apply creates, drains and removes lanes (a move to another host, one lane
//    busy with a job): the other serve leads within the lease and finishes the move;
// 2. kill -9 a CLI `lanekeeper apply` in the middle of a move back (creates carried out by the host but not yet
//    online, the busy lane drained, the idle lane's removal waiting for the creates): meanwhile `lanes remove` of a
//    lane being created is refused (OPERATION_IN_FLIGHT, nothing changed); the next `plan` shows the interrupted
//    creates within one operation-lease TTL and creates nothing twice, and the next `apply` finishes them;
// 3. a CLI `lanes remove` of the busy drained lane is killed -9 in its wait for the job; the leading serve resumes the
//    removal and waits for the job inside the drain protocol; it is frozen there (SIGSTOP) past its lease, the other
//    takes the lock and the fence and resumes the removal; SIGCONT: the old leader's action stops at once, refused
//    (OPERATION_LEASE_LOST or FENCING_TOKEN_STALE), nothing it attempts after waking takes effect (its audit chain,
//    the agents' audit chains, the lane records' fencing tokens), and the new leader finishes the drain with the
//    job run to its end.
// (Losing NATS nodes under a running fleet, a node, the lane records' stream leader and the whole cluster, is
// test/e2e/cluster-nats-loss.test.ts.)
// After each: no lane is duplicated or orphaned, no intent ran twice (the agents' audit chains), and
// `lanekeeper audit verify --stream` passes; after 1 and 3 the fleet converges to the policy with no job cancelled.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COORDINATOR_BIN, FLEET_NATS_PASSWORD_ENV, type Fleet } from "@lanekeeper/harness";
import type { AuditRecord } from "@lanekeeper/shared";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { DEFAULT_OPERATION_LEASE_TTL_MS, OPERATIONS_BUCKET } from "../../packages/coordinator/src/apply/limits.js";
import { KvLaneStore } from "../../packages/coordinator/src/lane-store-kv/kv-lane-store.js";
import { FENCE_KEY } from "../../packages/coordinator/src/lane-store-kv/lane-fence.js";
import type { StoredLaneRecord } from "../../packages/coordinator/src/observe/lane-record.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";
import { apply, auditChain, describeCli, e2eFleet, eventually, managedRunners, pendingActions, planJson } from "./e2e-fixture.js";

const SCOPE = "acme/api";
const POOL = "linux-x64";
const LABELS = ["linux", "lanes-cluster"];
const LOCK_TTL = "3s";
const JOB_MS = 15_000;
/** The job that keeps a lane busy through scenarios 2 and 3 (both must happen while it runs). */
const LONG_JOB_MS = 150_000;
/** Refusals a superseded coordinator's attempts end with. */
const SUPERSEDED = ["OPERATION_LEASE_LOST", "FENCING_TOKEN_STALE"];

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

/** The fence (`fence.epoch` in the lane-record bucket): the newest leader epoch and the instance that took it. */
async function fence(): Promise<{ epoch: number; instance?: string } | undefined> {
  const e = await (await nc.jetstream().views.kv("lk_lanes")).get(FENCE_KEY);
  return e === null || e.operation !== "PUT" ? undefined : (JSON.parse(new TextDecoder().decode(e.value)) as { epoch: number; instance?: string });
}

/** The live operation leases (`lk_operations`): one per running action, its key the operation id. */
async function operations(): Promise<{ key: string; laneId: string; kind: string; instance: string }[]> {
  const kv = await nc.jetstream().views.kv(OPERATIONS_BUCKET);
  const out: { key: string; laneId: string; kind: string; instance: string }[] = [];
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e === null || e.operation !== "PUT") continue;
    out.push({ key, ...(JSON.parse(new TextDecoder().decode(e.value)) as { laneId: string; kind: string; instance: string }) });
  }
  return out;
}

/** What the host's agent carried out (its audit chain): `action:laneId` with the coordinator's operation id. */
async function agentDone(hostId: string): Promise<{ what: string; operationId: string; at: number }[]> {
  const a = fleet.agents.find((x) => x.hostId === hostId);
  if (a === undefined) throw new Error(`no agent ${hostId}`);
  return (await auditChain(join(a.stateDir, "audit.log")))
    .filter((r) => r.phase === "succeeded" && r.intentId !== undefined)
    .map((r) => ({ what: `${r.action}:${r.laneId ?? ""}`, operationId: r.operationId ?? "", at: r.at }));
}

/** A one-shot `lanekeeper <args>` child process (the one killed with -9), as `instance`, its output in a log file. */
function spawnCli(args: string[], instance: string): ChildProcess {
  const fd = openSync(join(fleet.dir, `${instance}.log`), "a");
  const proc = spawn(process.execPath, [COORDINATOR_BIN, ...args], {
    cwd: fleet.dir,
    env: { ...process.env, ...fleet.coordinatorEnv, LANEKEEPER_INSTANCE: instance },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  return proc;
}

async function kill9(proc: ChildProcess): Promise<void> {
  proc.kill("SIGKILL");
  await exited(proc);
}

/** No lane duplicated or orphaned, no intent twice, the audit stream verifies (the fleet need not have converged). */
async function expectSafe(): Promise<void> {
  const plan = await planJson(fleet);
  expect(plan.classification.lanes.orphaned ?? 0).toBe(0);
  expect(plan.classification.foreign).toEqual([]);
  const recs = await records();
  const runners = await managedRunners(fleet);
  expect(new Set(runners.map((r) => r.name)).size).toBe(runners.length);
  for (const r of runners) expect(recs.map((x) => x.laneId)).toContain(r.name);
  await expectNoIntentTwice();
  const verify = await fleet.lanekeeper(["audit", "verify", "--stream", "--json"]);
  expect(verify.code, describeCli(verify)).toBe(0);
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
    // Long enough for scenario 3's resumed removal to wait for its job (a deadline turns into needs-attention).
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 300_000 },
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

  // Shared by scenarios 2 and 3: the move's hosts, the busy lane (drained by the killed apply) and its job.
  let from = "";
  let to = "";
  let busyLane = "";
  let longJob = 0;

  /** Records, leases and what the agents did: what a timed-out wait was looking at. */
  async function state(): Promise<string> {
    const recs = (await records()).map((r) => `${r.laneId}@${r.hostId}:${r.state}:${r.operationId ?? ""}`);
    const ops = (await operations()).map((o) => `${o.key}:${o.kind}:${o.laneId}:${o.instance}`);
    const done = [...(await agentDone("build01")), ...(await agentDone("build02"))].map((d) => `${d.what}:${d.operationId}`);
    return JSON.stringify({ recs, ops, done, runners: (await managedRunners(fleet)).map((r) => `${r.name}:${r.status}:${r.busy}`) });
  }

  async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs: number, stepMs = 300): Promise<T> {
    try {
      return await eventually(probe, what, timeoutMs, stepMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await state()}`);
    }
  }

  it("kill -9 of a CLI apply in the middle of a move: lanes remove of a create in flight is refused; the next plan shows the interrupted actions at once, the next apply finishes them", async () => {
    const before = await records();
    from = before[0]?.hostId ?? "";
    to = from === "build01" ? "build02" : "build01";
    expect(before.map((r) => r.hostId)).toEqual([from, from]);
    longJob = await queueJob(LONG_JOB_MS);
    const busyRunner = await runningOn(longJob);
    busyLane = before.find((r) => r.runnerId === busyRunner)?.laneId ?? "";
    const idleLane = before.find((r) => r.laneId !== busyLane)?.laneId ?? "";
    expect(busyLane).not.toBe("");
    // New runners cannot reach GitHub: the creates are carried out on the host, then wait to come online.
    await fleet.github.control.setFaults({ refuseSessions: true });
    await setLanes(2, [to]);
    const cli = spawnCli(["apply", "--yes", "--json", "--inventory-wait", "3s"], "cli-apply");
    let created: string[] = [];
    try {
      // In the middle: both creates reached the new host and their actions still run, the busy lane is drained (labels
      // and agent), the idle lane's removal waits for the creates.
      created = await waitFor(
        async () => {
          const recs = await records();
          const creating = recs.filter((r) => r.hostId === to && r.state === "creating");
          const live = new Set((await operations()).map((o) => o.key));
          // At least one create still runs (its lease live) for the refusal below.
          if (creating.length !== 2 || !creating.some((r) => r.operationId !== undefined && live.has(r.operationId))) return undefined;
          const onTo = (await agentDone(to)).map((d) => d.what);
          const onFrom = (await agentDone(from)).map((d) => d.what);
          const drained = recs.find((r) => r.laneId === busyLane)?.state === "draining" && onFrom.includes(`drain:${busyLane}`);
          return drained && creating.every((r) => onTo.includes(`create:${r.laneId}`)) ? creating.map((r) => r.laneId).sort() : undefined;
        },
        `the creates carried out on ${to} and the busy lane drained`,
        120_000,
      );
      // `lanes remove` of a lane whose create runs in another coordinator: refused, nothing changed.
      const live = new Set((await operations()).map((o) => o.key));
      const target = (await records()).find((r) => created.includes(r.laneId) && r.operationId !== undefined && live.has(r.operationId))?.laneId ?? "";
      expect(target, await state()).not.toBe("");
      const rev = (await store.get(target))?.revision;
      const refused = await fleet.lanekeeper(["lanes", "remove", target, "--json"]);
      expect(refused.code, describeCli(refused)).toBe(13);
      expect(refused.stdout + refused.stderr).toMatch(/OPERATION_IN_FLIGHT/);
      expect((await store.get(target))?.revision).toBe(rev);
      expect(cli.exitCode).toBeNull();
    } finally {
      await kill9(cli);
      await fleet.github.control.clearFaults();
    }
    const killedAt = Date.now();
    // The next CLI run sees the interrupted creates at once (one operation-lease TTL): they took effect on the host,
    // so nothing is created again; each completes once its runner is online.
    const plan = await eventually(
      async () => {
        const p = await planJson(fleet);
        const seen = new Set([...p.warnings.filter((w) => w.code === "CREATE_INTERRUPTED").map((w) => w.laneId), ...p.actions.filter((a) => a.reason.code === "CREATE_COMPLETED").map((a) => a.laneId)]);
        return created.every((id) => seen.has(id)) ? p : undefined;
      },
      "plan showing the interrupted creates",
      DEFAULT_OPERATION_LEASE_TTL_MS + 20_000,
      1000,
    );
    expect(Date.now() - killedAt).toBeLessThan(DEFAULT_OPERATION_LEASE_TTL_MS + 20_000);
    expect(plan.actions.filter((a) => a.kind === "create")).toEqual([]);
    expect(plan.actions.filter((a) => a.laneId === busyLane)).toEqual([]);
    expect(plan.actions.find((a) => a.laneId === idleLane)?.kind).toBe("remove");
    // The next apply finishes the move, except the busy lane, which waits for its job.
    await waitFor(async () => (await managedRunners(fleet)).filter((r) => created.includes(r.name) && r.status === "online").length === 2, "the new runners online", 120_000, 1000);
    const next = await apply(fleet, ["--inventory-wait", "3s"]);
    expect(next.cli.code, describeCli(next.cli)).toBe(0);
    const after = await records();
    expect(after.map((r) => `${r.laneId}:${r.state}`).sort()).toEqual([...created.map((id) => `${id}:active`), `${busyLane}:draining`].sort());
    expect((await fleet.github.control.getJob(longJob)).status).toBe("in_progress");
    await expectSafe();
  }, 600_000);

  it("a leader frozen past its lease in the middle of a drain cannot act when it resumes; the new leader finishes the drain, the job runs to its end", async () => {
    // A `lanes remove` of the busy lane, killed in its wait for the job: a removal in flight, its lease aging out.
    const rm = spawnCli(["lanes", "remove", busyLane, "--json", "--inventory-wait", "3s"], "cli-remove");
    try {
      await waitFor(
        async () => {
          const r = await store.get(busyLane);
          return r?.state === "removing" && (await operations()).some((o) => o.key === r.operationId && o.instance === "cli-remove");
        },
        "the CLI's removal waiting for the job",
        60_000,
        300,
      );
    } finally {
      await kill9(rm);
    }
    const a = await startServe("serve-c");
    const b = await startServe("serve-d");
    const first = await waitFor(leader, "a leader", 60_000, 200);
    const frozen = first === a.instance ? a : b;
    const next = frozen === a ? b : a;
    // The leader resumes the removal once the CLI's lease aged out: it claimed the record and waits for the job
    // inside the drain protocol (labels and agent were drained before: not done again).
    const opOld = await waitFor(
      async () => {
        const r = await store.get(busyLane);
        const op = (await operations()).find((o) => o.laneId === busyLane && o.instance === frozen.instance);
        return op !== undefined && r?.state === "removing" && r.operationId === op.key ? op.key : undefined;
      },
      "the leader's resumed removal waiting for the job",
      120_000,
      200,
    );
    const epochOld = (await fence())?.epoch ?? 0;
    expect((await fence())?.instance).toBe(frozen.instance);
    frozen.proc.kill("SIGSTOP");
    const frozenAt = Date.now();
    try {
      // The other takes the lock and moves the fence, then (its lease gone) resumes the removal itself.
      await waitFor(async () => (await leader()) === next.instance, "the other to lead", 30_000, 200);
      await waitFor(async () => (await fence())?.instance === next.instance, "the new leader's fence", 30_000, 200);
      await waitFor(
        async () => {
          const r = await store.get(busyLane);
          if (r === undefined) return true;
          return (await operations()).some((o) => o.laneId === busyLane && o.instance === next.instance && r.operationId === o.key);
        },
        "the new leader's resumed removal",
        DEFAULT_OPERATION_LEASE_TTL_MS + 60_000,
        200,
      );
    } finally {
      frozen.proc.kill("SIGCONT");
    }
    const resumedAt = Date.now();
    // The old leader's action stops as soon as it wakes: refused, in its own audit chain.
    const stopped = await waitFor(
      async () => (await auditChain(frozen.auditPath)).find((r) => r.operationId === opOld && r.phase === "failed"),
      "the old leader's refused removal",
      60_000,
      300,
    );
    expect(SUPERSEDED).toContain(stopped.reasonCode);
    await expectConverged(2, [to]);

    // Nothing the old leader attempted after it woke took effect: every terminal record is a refusal ...
    const oldChain = await auditChain(frozen.auditPath);
    const woke = oldChain.filter((r) => r.at >= resumedAt);
    expect(woke.filter((r) => r.phase === "succeeded")).toEqual([]);
    for (const r of woke.filter((x) => x.phase === "failed")) expect(SUPERSEDED, JSON.stringify(r)).toContain(r.reasonCode);
    // ... no agent carried out an intent of its operations after the takeover ...
    const oldOps = new Set(oldChain.map((r) => r.operationId).filter((x): x is string => x !== undefined && x !== ""));
    for (const host of ["build01", "build02"]) {
      const late = (await agentDone(host)).filter((d) => oldOps.has(d.operationId) && d.at >= frozenAt);
      expect(late, `${host}: intents of the superseded leader carried out`).toEqual([]);
    }
    // ... and no lane record was written under its epoch since.
    for (const r of await records()) expect(r.fencingToken === epochOld && r.updatedAtMs >= frozenAt, r.laneId).toBe(false);
    // The new leader finished the drain: the busy lane was removed once, after its job, by the new leader.
    const newOps = new Set((await auditChain(next.auditPath)).map((r) => r.operationId));
    const removed = (await agentDone(from)).filter((d) => d.what === `remove:${busyLane}`);
    expect(removed).toHaveLength(1);
    expect(newOps.has(removed[0]?.operationId)).toBe(true);
    const job = await fleet.github.control.getJob(longJob);
    expect(job.conclusion).toBe("success");
    expect(removed[0]?.at ?? 0).toBeGreaterThanOrEqual(Date.parse(job.completedAt ?? "") || 0);
    await stopServes();
  }, 600_000);
});
