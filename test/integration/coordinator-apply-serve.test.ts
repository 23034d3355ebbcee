// `serve` against the real world: one leader at a time through the JetStream KV lock (failover when the leader
// stops renewing, and no stealing it back), the reconcile loop converging the fleet, Prometheus metrics, and
// health-driven restarts: a runner offline on GitHub while its host reports it running, and a lane the agent
// gave up on after a crash loop, with a per-lane cap after which the lane is left to an operator. Finally the
// `lanekeeper serve` command itself, with its metrics endpoint, stopped by a signal.
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { Health, LaneState } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryAuditTrail, type AuditTrail } from "../../packages/coordinator/src/audit/coordinator-audit.js";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { CoordinatorMetrics, startMetricsServer } from "../../packages/coordinator/src/metrics/coordinator-metrics.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";
import { Reconciler, type ReconcilerOptions } from "../../packages/coordinator/src/serve/reconciler.js";
import { eventually } from "./agent-fixture.js";
import { HOST, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
let laneId = "";

beforeAll(async () => {
  w = await startApplyWorld();
});
afterAll(async () => {
  await w?.close();
});

function reconcilerCtx(count: number, audit: AuditTrail = w.audit): ReconcilerOptions["ctx"] {
  const policy = w.policy(count);
  return { policy, github: w.github, store: w.store, inventory: w.inventory, audit, engine: (over = {}) => w.engine(policy, { audit, ...over }) };
}

async function listenerPid(lane: string): Promise<number | undefined> {
  for (const pid of await w.sd.unitHostPids(`lanekeeper-lane-${lane}.service`)) {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm === "Runner.Listener") return pid;
  }
  return undefined;
}

async function hostLane(lane: string) {
  return (await w.inventory.latest(HOST))?.snapshot.lanes.find((l) => l.laneId === lane);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

describe("serve: leader lock, reconcile loop, metrics", () => {
  it("one leader at a time: the leader reconciles, the follower does nothing; metrics over HTTP", async () => {
    const js = w.coord.jetstream();
    const a = await LeaderLock.open(js, { ttlMs: 6000, instance: "coord-a", bucket: "lk_leader_test" });
    const b = await LeaderLock.open(js, { ttlMs: 6000, instance: "coord-b", bucket: "lk_leader_test" });
    const ma = new CoordinatorMetrics(w.github);
    const mb = new CoordinatorMetrics(w.github);
    const ra = new Reconciler({ ctx: reconcilerCtx(1), lock: a, metrics: ma, intervalMs: 1000 });
    const rb = new Reconciler({ ctx: reconcilerCtx(1, new MemoryAuditTrail()), lock: b, metrics: mb, intervalMs: 1000 });
    expect(await a.ensure()).toBe(true);
    a.start(); // renews in the background, as serve does, so a long cycle keeps the lock
    try {
      const first = await ra.cycle();
      expect(first.leader).toBe(true);
      expect(first.report?.outcomes.map((o) => [o.kind, o.status])).toEqual([["create", "succeeded"]]);
      laneId = first.report!.outcomes[0]!.laneId;
      expect((await rb.cycle()).leader).toBe(false);
      expect((await b.holderInfo())?.instance).toBe("coord-a");

      await eventually(async () => (await hostLane(laneId)) !== undefined, "the lane in the inventory");
      expect((await ra.cycle()).report?.outcomes).toEqual([]);
      const server = await startMetricsServer(ma, 0, "127.0.0.1");
      try {
        const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
        expect(text).toMatch(/^lanekeeper_leader 1$/m);
        expect(text).toMatch(/^lanekeeper_lanes\{state="active"\} 1$/m);
        expect(text).toMatch(/^lanekeeper_actions_total\{kind="create",status="succeeded"\} 1$/m);
        expect(text).toMatch(/^lanekeeper_intent_latency_seconds_count\{action="create",result="ok"\} 1$/m);
        expect(text).toMatch(/^lanekeeper_github_rate_limit_remaining \d+$/m);
        expect(text).toMatch(/^lanekeeper_github_requests_total [1-9]\d*$/m);
        expect(text).toMatch(/^lanekeeper_reconcile_cycles_total\{result="ok"\} 2$/m);
      } finally {
        await server.close();
      }
      expect(await mb.text()).toMatch(/^lanekeeper_leader 0$/m);
    } finally {
      await a.stop();
    }
    // A clean stop releases the lock at once.
    expect(await b.ensure()).toBe(true);
    await b.stop();
  });

  it("failover: a leader that stops renewing loses the lock after its TTL and cannot take it back", async () => {
    const js = w.coord.jetstream();
    const a = await LeaderLock.open(js, { ttlMs: 1500, instance: "coord-a", bucket: "lk_leader_failover" });
    const b = await LeaderLock.open(js, { ttlMs: 1500, instance: "coord-b", bucket: "lk_leader_failover" });
    expect(await a.ensure()).toBe(true);
    expect(await b.ensure()).toBe(false);
    // a "crashes": it never renews. After the TTL the follower takes over.
    await eventually(async () => b.ensure(), "the follower to take over after the TTL", 20_000, 250);
    expect(await a.ensure()).toBe(false);
    expect((await a.holderInfo())?.instance).toBe("coord-b");
    await b.stop();
  });

  it("health restart: a runner offline on GitHub while its host runs it is restarted through the drain path", async () => {
    const metrics = new CoordinatorMetrics(w.github);
    const events: string[] = [];
    // Short long-polls for this lane's runner (its .env, read at start), so a frozen runner goes offline on GitHub
    // within seconds instead of after the real runner's 50 s poll; the agent restarts it after the SIGTERM.
    await appendFile(join(w.agent.parts.dirs.runnerDir(laneId), ".env"), "LK_RUNNER_POLL_MS=300\n");
    const old = await eventually(() => listenerPid(laneId), "the listener");
    process.kill(old, "SIGTERM");
    const pid = await eventually(async () => {
      const p = await listenerPid(laneId);
      return p !== undefined && p !== old ? p : undefined;
    }, "the runner restarted by the agent");
    await eventually(async () => (await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status === "online", "online again");
    // Freeze the listener: GitHub sees it go offline, systemd and the agent still see it running.
    process.kill(pid, "SIGSTOP");
    let resumed = false;
    const r = new Reconciler({
      ctx: reconcilerCtx(1),
      metrics,
      intervalMs: 500,
      health: { offlineGraceMs: 500 },
      onEvent: (e) => {
        if (e.type === "action-start") {
          events.push(e.kind);
          // Let the frozen process take its signal when systemd stops it (else systemd waits 45 s to SIGKILL it).
          if (!resumed) {
            resumed = true;
            process.kill(pid, "SIGCONT");
          }
        }
      },
    });
    try {
      await eventually(async () => (await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status === "offline", "GitHub offline");
      expect((await hostLane(laneId))?.state).toBe(LaneState.LANE_STATE_RUNNING);
      let restarted;
      for (let i = 0; i < 20 && restarted === undefined; i++) {
        const c = await r.cycle();
        expect(c.report?.outcomes ?? []).toEqual([]);
        restarted = c.healthRestarts[0];
        if (restarted === undefined) await new Promise((res) => setTimeout(res, 300));
      }
      expect(restarted).toMatchObject({ kind: "restart", why: "offline", status: "succeeded" });
      expect(events).toEqual(["restart"]);
    } finally {
      if (!resumed) process.kill(pid, "SIGCONT");
    }
    expect((await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status).toBe("online");
    expect(await metrics.text()).toMatch(/^lanekeeper_restarts_total\{reason="offline",result="succeeded"\} 1$/m);
    expect(await w.store.get(laneId)).toMatchObject({ state: "active" });
  });

  it("health restart after a crash loop the agent gave up on; past the cap (counted across leaders) the lane is left to an operator", async () => {
    const crashLoop = async (): Promise<void> => {
      await eventually(async () => {
        const l = await hostLane(laneId);
        if (l?.health === Health.HEALTH_CRASH_LOOP || l?.state === LaneState.LANE_STATE_NEEDS_ATTENTION) return true;
        // The runner keeps exiting (SIGTERM: it deletes its session first, so each restart reconnects at once).
        const p = await listenerPid(laneId);
        if (p !== undefined) process.kill(p, "SIGTERM");
        return false;
      }, "the agent to report a crash loop", 60_000, 700);
    };
    // The cap counts every health restart of the lane in the window, whatever its reason: the offline restart of
    // the test before is on the record already.
    expect((await w.store.get(laneId))?.healthRestartsAtMs).toHaveLength(1);
    const health = { maxRestarts: 2, offlineGraceMs: 60_000 };
    const r = new Reconciler({ ctx: reconcilerCtx(1), intervalMs: 500, health });
    await crashLoop();
    const c1 = await r.cycle();
    expect(c1.healthRestarts.map((x) => [x.why, x.status])).toEqual([["crash-loop", "succeeded"]]);
    await eventually(async () => (await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status === "online", "back online");
    await eventually(async () => (await hostLane(laneId))?.health === Health.HEALTH_HEALTHY, "healthy again");

    // The restart is counted on the lane record, so a new leader (a second Reconciler) goes on counting.
    expect((await w.store.get(laneId))?.healthRestartsAtMs).toHaveLength(2);
    await crashLoop();
    const newLeader = new Reconciler({ ctx: reconcilerCtx(1), intervalMs: 500, health });
    const c2 = await newLeader.cycle();
    expect(c2.healthRestarts).toEqual([]);
    expect(c2.capped).toEqual([laneId]);
    const rec = await w.store.get(laneId);
    expect(rec?.state).toBe("needs-attention");
    expect(rec?.attention?.code).toBe("HEALTH_RESTART_CAP");
    expect(rec?.attention?.message).toContain(`lanekeeper lanes restart ${laneId}`);
    // The operator restarts it: the record is active again.
    const { runLaneCommand } = await import("../../packages/coordinator/src/apply/lane-commands.js");
    const op = await runLaneCommand(w.laneDeps(1), "restart", laneId, { operator: "dave" });
    expect(op.outcomes.map((o) => o.status)).toEqual(["succeeded"]);
    expect(await w.store.get(laneId)).toMatchObject({ state: "active" });
    expect((await w.store.get(laneId))?.attention).toBeUndefined();
    // The operator has looked at the lane: its health-restart count starts afresh.
    expect((await w.store.get(laneId))?.healthRestartsAtMs).toBeUndefined();
  });

  it("`lanekeeper serve` reconciles to the policy, serves /metrics, and stops on a signal", async () => {
    const policyPath = join(w.dir, "serve.yaml");
    await writeFile(policyPath, w.policyText(2, { auditFile: join(w.dir, "serve-audit.jsonl"), natsPasswordEnv: "LK_TEST_NATS_PASSWORD" }));
    const port = await freePort();
    let err = "";
    const io: CliIo = {
      out: () => undefined,
      err: (t) => void (err += t),
      env: { LK_TEST_GITHUB_TOKEN: w.gh.token, LK_TEST_NATS_PASSWORD: w.coordinatorUser.password, LANEKEEPER_INSTANCE: "serve-test" },
      cwd: w.dir,
      now: () => Date.now(),
    };
    const stop = new AbortController();
    const running = runCli(
      ["serve", "--policy", policyPath, "--interval", "1s", "--metrics-port", String(port), "--metrics-host", "127.0.0.1", "--lock-ttl", "3s"],
      io,
      { signal: stop.signal },
    );
    try {
      await eventually(async () => (await w.store.list()).filter((x) => x.state === "active").length === 2, "two active lanes", 90_000, 500);
      await eventually(async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^lanekeeper_lanes\{state="active"\} 2$/m.test(text) && /^lanekeeper_leader 1$/m.test(text);
      }, "metrics: leader, two active lanes");
    } finally {
      stop.abort();
    }
    expect(await running).toBe(0);
    expect(err).toMatch(/→ create/);
    // The lock was released on the way out.
    const lock = await LeaderLock.open(w.coord.jetstream(), { ttlMs: 3000, instance: "probe" });
    expect(await lock.holderInfo()).toBeUndefined();
  });
});
