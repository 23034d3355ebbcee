// A 3-node JetStream cluster on loopback (the harness's startNatsCluster, with lanekeeper's per-host permissions on
// every node), and the coordinator on it: every bucket and the audit stream are created with the policy's replica
// count, an existing bucket with another count stops the coordinator at start (JETSTREAM_REPLICAS_MISMATCH, exit 3)
// and `lanekeeper cluster replicas --apply` fixes it; an agent login has the same rights on every node as on a
// single server (its own subjects, no JetStream); a client listing every node survives the loss of the one it
// was connected to.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsCluster, type NatsClusterHandle } from "@lanekeeper/harness";
import { generateSigningKey, LanekeeperError, parsePolicy, signingKeyToPem, type Policy } from "@lanekeeper/shared";
import { connect, Events } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode, exitCodeFor } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { openCoordinator } from "../../packages/coordinator/src/context/coordinator-context.js";
import { COORDINATOR_STREAMS, JetStreamReplicasError } from "../../packages/coordinator/src/context/jetstream-replicas.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";
import { KvJobStore } from "../../packages/coordinator/src/demand/kv-job-store.js";
import { KvDeliveryLedger } from "../../packages/coordinator/src/demand/delivery-ledger.js";

const COORDINATOR = { user: "coordinator", password: randomBytes(12).toString("hex") };
const AGENT = { hostId: "build01", user: "agent-build01", password: randomBytes(12).toString("hex") };
const PASSWORD_ENV = "LK_TEST_NATS_PASSWORD";
const TOKEN_ENV = "LK_TEST_GITHUB_TOKEN";

let cluster: NatsClusterHandle;
let dir: string;
const env = { [PASSWORD_ENV]: COORDINATOR.password, [TOKEN_ENV]: "ghp_notusedbythistest" };

function policyYaml(replicas: number): string {
  return [
    "github:",
    "  apiUrl: http://127.0.0.1:9/api/v3",
    "  webUrl: http://127.0.0.1:9",
    `  auth: { tokenEnv: ${TOKEN_ENV} }`,
    "coordinator:",
    `  keyFile: ${join(dir, "coordinator.key")}`,
    `  natsServers: [${cluster.urls.join(", ")}]`,
    `  natsUser: ${COORDINATOR.user}`,
    `  natsPasswordEnv: ${PASSWORD_ENV}`,
    `  jetstreamReplicas: ${replicas}`,
    `  auditFile: ${join(dir, "audit.jsonl")}`,
    "",
  ].join("\n");
}

function policy(replicas: number): Policy {
  return parsePolicy(policyYaml(replicas));
}

async function lk(args: string[], replicas: number): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `policy-r${replicas}.yaml`);
  await writeFile(file, policyYaml(replicas));
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: { ...env, LANEKEEPER_POLICY: file }, cwd: dir, now: () => Date.now() };
  const code = await runCli(args, io, { confirm: null });
  return { code, out, err };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-nats-cluster-"));
  await writeFile(join(dir, "coordinator.key"), signingKeyToPem(generateSigningKey()), { mode: 0o600 });
  cluster = await startNatsCluster({ users: { agents: [AGENT], coordinator: COORDINATOR } });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("a 3-node JetStream cluster", () => {
  it("the coordinator creates every KV bucket and the audit stream with coordinator.jetstreamReplicas replicas", async () => {
    const ctx = await openCoordinator(policy(3), { env, instance: "r3" });
    try {
      // The leader lock's bucket and the demand sources' buckets (job store, webhook deliveries) are opened by `serve`.
      const lock = await LeaderLock.open(ctx.js, { ttlMs: 2_000, instance: "r3", replicas: 3 });
      expect(await lock.ensure()).toBe(true);
      await lock.stop();
      await KvJobStore.open(ctx.js, { replicas: 3 });
      await KvDeliveryLedger.open(ctx.js, { replicas: 3 });
      // Every stream a coordinator creates is one the replica check covers, and the other way round.
      const onServer: string[] = [];
      for await (const info of ctx.jsm.streams.list()) onServer.push(info.config.name);
      expect(onServer.sort()).toEqual([...COORDINATOR_STREAMS].sort());
      for (const stream of COORDINATOR_STREAMS) {
        const info = await ctx.jsm.streams.info(stream);
        expect(info.config.num_replicas, stream).toBe(3);
        expect(info.cluster?.replicas?.length, stream).toBe(2);
      }
    } finally {
      await ctx.close();
    }
    const r = await lk(["cluster", "replicas", "--json"], 3);
    expect(r.code, r.err).toBe(ExitCode.OK);
    const report = JSON.parse(r.out) as { ok: boolean; streams: { stream: string; replicas: number; leader: string }[] };
    expect(report.ok).toBe(true);
    expect(report.streams.map((s) => s.replicas)).toEqual(COORDINATOR_STREAMS.map(() => 3));
    for (const s of report.streams) expect(cluster.nodeIndex(s.leader), s.stream).toBeGreaterThanOrEqual(0);
  }, 120_000);

  it("refuses to start on buckets with another replica count, names them and the fix; cluster replicas --apply fixes it", async () => {
    const err = await openCoordinator(policy(1), { env, instance: "r1" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JetStreamReplicasError);
    const e = err as JetStreamReplicasError;
    expect(e.code).toBe("JETSTREAM_REPLICAS_MISMATCH");
    expect(exitCodeFor(e)).toBe(ExitCode.CONFIG);
    expect(e.mismatches.map((m) => m.stream).sort()).toEqual([...COORDINATOR_STREAMS].sort());
    expect(e.message).toContain("KV_lk_lanes has 3");
    expect(e.message).toContain("coordinator.jetstreamReplicas: 3");
    expect(e.message).toContain("lanekeeper cluster replicas --apply");

    // The same through the CLI: `status` exits 3 with the code; `cluster replicas` (read-only) too.
    const status = await lk(["status", "--json", "--inventory-wait", "0s"], 1);
    expect(status.code).toBe(ExitCode.CONFIG);
    expect(status.out + status.err).toContain("JETSTREAM_REPLICAS_MISMATCH");
    const check = await lk(["cluster", "replicas"], 1);
    expect(check.code).toBe(ExitCode.CONFIG);
    expect(check.out).toMatch(/KV_lk_lanes\s+3/);

    // The documented fix: move the streams to the policy's count, then the coordinator opens.
    const fix = await lk(["cluster", "replicas", "--apply"], 1);
    expect(fix.code, fix.err).toBe(ExitCode.OK);
    expect(fix.out).toContain("KV_lk_lanes: 3 -> 1 replicas");
    const ctx = await openCoordinator(policy(1), { env, instance: "r1" });
    try {
      expect((await ctx.jsm.streams.info("KV_lk_lanes")).config.num_replicas).toBe(1);
    } finally {
      await ctx.close();
    }
    // And back to 3, as the cluster example wants.
    expect((await lk(["cluster", "replicas", "--apply"], 3)).code).toBe(ExitCode.OK);
  }, 120_000);

  it("an agent login has its own subjects on every node and no JetStream, as on a single server", async () => {
    for (const url of cluster.urls) {
      const nc = await connect({ servers: url, user: AGENT.user, pass: AGENT.password, reconnect: false });
      try {
        const jsm = await nc.jetstreamManager({ timeout: 2_000 }).then(
          (m) => m.getAccountInfo().then(() => "usable"),
          (x: unknown) => (x instanceof Error ? x.message : String(x)),
        );
        expect(jsm).not.toBe("usable");
        const errors: string[] = [];
        const watch = (async () => {
          for await (const s of nc.status()) if (s.type === Events.Error) errors.push(typeof s.data === "string" ? s.data : JSON.stringify(s.data));
        })();
        // Its own subjects are fine (the JetStream attempt above may have left a violation: start counting now).
        await new Promise((r) => setTimeout(r, 100));
        errors.length = 0;
        nc.publish("lk.v1.inventory.build01", new Uint8Array(1));
        await nc.flush();
        await new Promise((r) => setTimeout(r, 100));
        expect(errors).toEqual([]);
        // Another host's are not.
        nc.publish("lk.v1.inventory.build02", new Uint8Array(1));
        await nc.flush();
        await new Promise((r) => setTimeout(r, 100));
        expect(errors).toEqual(["PERMISSIONS_VIOLATION"]);
        nc.subscribe("lk.v1.intent.build02");
        await nc.flush();
        await new Promise((r) => setTimeout(r, 100));
        expect(errors).toEqual(["PERMISSIONS_VIOLATION", "PERMISSIONS_VIOLATION"]);
        void watch;
      } finally {
        await nc.close();
      }
    }
  }, 60_000);

  it("a coordinator listing every node keeps writing through the loss of the node it is connected to", async () => {
    const ctx = await openCoordinator(policy(3), { env, instance: "failover" });
    try {
      const connectedTo = cluster.urls.indexOf(`nats://${ctx.nc.getServer()}`);
      expect(connectedTo).toBeGreaterThanOrEqual(0);
      await cluster.nodes[connectedTo]!.halt({ signal: "SIGKILL" });
      const laneId = `lk-failover-${randomBytes(3).toString("hex")}`;
      const t0 = Date.now();
      let created;
      for (;;) {
        try {
          created = await ctx.store.create({ laneId, scope: "acme/api", pool: "p", hostId: "build01", state: "creating", createdAtMs: t0, updatedAtMs: t0 });
          break;
        } catch (err) {
          if (!(err instanceof LanekeeperError) || Date.now() - t0 > 30_000) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      expect((await ctx.store.get(laneId))?.revision).toBe(created.revision);
      expect(cluster.urls).toContain(`nats://${ctx.nc.getServer()}`);
      expect(`nats://${ctx.nc.getServer()}`).not.toBe(cluster.urls[connectedTo]);
      await cluster.nodes[connectedTo]!.resume();
    } finally {
      await ctx.close();
    }
  }, 90_000);
});
