// The coordinator on a 3-node JetStream cluster (the harness's startNatsCluster) while NATS goes away:
// - opening while a node is down: the first JetStream requests go unanswered (TIMEOUT) for ~10 s while the streams
//   and the meta leader the node led are elected elsewhere; opening retries them with backoff instead of failing;
// - opening with the whole cluster down: a CLI command fails within its --timeout with NATS_UNAVAILABLE (exit 9),
//   naming the servers and what to check; a cluster back within the wait is waited for;
// - `lanekeeper serve` through a whole-cluster outage: it steps down (it cannot renew the leader lease), stays up,
//   and leads again by itself when the cluster is back, under a new fencing epoch.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COORDINATOR_BIN, startGitHubEmulator, startNatsCluster, type GitHubEmulator, type NatsClusterHandle } from "@lanekeeper/harness";
import { generateSigningKey, parsePolicy, signingKeyToPem, type Policy } from "@lanekeeper/shared";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { openCoordinator } from "../../packages/coordinator/src/context/coordinator-context.js";
import { LeaderLock } from "../../packages/coordinator/src/serve/leader-lock.js";

const COORDINATOR = { user: "coordinator", password: randomBytes(12).toString("hex") };
const PASSWORD_ENV = "LK_TEST_NATS_PASSWORD";
const TOKEN_ENV = "LK_TEST_GITHUB_TOKEN";

let cluster: NatsClusterHandle;
let gh: GitHubEmulator;
let dir: string;
let env: Record<string, string>;

function policyYaml(): string {
  return [
    "github:",
    `  apiUrl: ${gh.apiUrl}`,
    `  webUrl: ${gh.url}`,
    `  auth: { tokenEnv: ${TOKEN_ENV} }`,
    "coordinator:",
    `  keyFile: ${join(dir, "coordinator.key")}`,
    `  natsServers: [${cluster.urls.join(", ")}]`,
    `  natsUser: ${COORDINATOR.user}`,
    `  natsPasswordEnv: ${PASSWORD_ENV}`,
    "  jetstreamReplicas: 3",
    `  auditFile: ${join(dir, "audit.jsonl")}`,
    "",
  ].join("\n");
}

function policy(): Policy {
  return parsePolicy(policyYaml());
}

async function lk(args: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const file = join(dir, "policy.yaml");
  await writeFile(file, policyYaml());
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: { ...env, LANEKEEPER_POLICY: file }, cwd: dir, now: () => Date.now() };
  const t0 = Date.now();
  const code = await runCli(args, io, { confirm: null });
  return { code, out, err, ms: Date.now() - t0 };
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-nats-loss-"));
  await writeFile(join(dir, "coordinator.key"), signingKeyToPem(generateSigningKey()), { mode: 0o600 });
  [cluster, gh] = await Promise.all([startNatsCluster({ users: { agents: [], coordinator: COORDINATOR } }), startGitHubEmulator({ repos: ["acme/api"] })]);
  env = { [PASSWORD_ENV]: COORDINATOR.password, [TOKEN_ENV]: gh.token };
  // Create every bucket and the audit stream with 3 replicas while the cluster is whole.
  const ctx = await openCoordinator(policy(), { env, instance: "setup" });
  await ctx.close();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await gh?.stop();
  if (dir !== undefined && process.env.LK_E2E_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
});

describe("the coordinator while NATS nodes go away", () => {
  it("opens right after a node died, retrying what the cluster cannot answer while it elects new leaders", async () => {
    for (const i of [0, 1]) {
      await cluster.nodes[i]!.halt({ signal: "SIGKILL" });
      const t0 = Date.now();
      const ctx = await openCoordinator(policy(), { env, instance: `node-${i}-down` });
      try {
        expect(cluster.urls).toContain(`nats://${ctx.nc.getServer()}`);
        expect(`nats://${ctx.nc.getServer()}`).not.toBe(cluster.urls[i]);
        await ctx.store.list();
      } finally {
        await ctx.close();
      }
      expect(Date.now() - t0).toBeLessThan(45_000);
      // What the operator runs then (docs/cluster.md): every stream keeps its replica count, the lost peer is not current.
      const r = await lk(["cluster", "replicas", "--json"]);
      expect(r.code, r.err).toBe(ExitCode.OK);
      const report = JSON.parse(r.out) as { ok: boolean; streams: { stream: string; exists: boolean; replicas: number; leader: string; current: number }[] };
      expect(report.ok).toBe(true);
      for (const s of report.streams.filter((x) => x.exists)) {
        expect(s.replicas, s.stream).toBe(3);
        expect(s.leader, s.stream).not.toBe(cluster.serverName(i));
      }
      await until(async () => {
        const again = JSON.parse((await lk(["cluster", "replicas", "--json"])).out) as typeof report;
        return again.streams.filter((s) => s.exists).every((s) => s.current <= 2) ? true : undefined;
      }, "the lost peer to show as not current", 30_000);
      await cluster.nodes[i]!.resume();
      await cluster.waitForJetStream();
    }
  }, 180_000);

  it("with the whole cluster down, a command fails with NATS_UNAVAILABLE within its --timeout; a cluster back in time is waited for", async () => {
    await cluster.haltAll({ signal: "SIGKILL" });
    try {
      const r = await lk(["status", "--json", "--inventory-wait", "0s", "--timeout", "8s"]);
      expect(r.code, r.err).toBe(ExitCode.NATS_UNAVAILABLE);
      expect(r.out + r.err).toContain("NATS_UNAVAILABLE");
      expect(r.out + r.err).toContain(`cannot connect to NATS at ${cluster.urls.join(", ")}: no answer after`);
      expect(r.out + r.err).toContain("docs/cluster.md");
      expect(r.ms).toBeLessThan(8_000);
      // The cluster comes back 4 s into the opening: the opening waits for it instead of failing.
      const opening = openCoordinator(policy(), { env, instance: "restart", natsWaitMs: 40_000 });
      await new Promise((res) => setTimeout(res, 4_000));
      await cluster.resumeAll();
      const ctx = await opening;
      await ctx.store.list();
      await ctx.close();
    } finally {
      await cluster.resumeAll();
    }
  }, 180_000);

  it("serve steps down while the whole cluster is away and leads again by itself when it is back", async () => {
    const file = join(dir, "serve.yaml");
    await writeFile(file, policyYaml());
    const logPath = join(dir, "serve.log");
    const fd = openSync(logPath, "a");
    const nc: NatsConnection = await connect({ servers: cluster.urls, user: COORDINATOR.user, pass: COORDINATOR.password, maxReconnectAttempts: -1 });
    const lock = await LeaderLock.open(nc.jetstream(), { ttlMs: 3_000, instance: "probe", replicas: 3 });
    // Started while a node is down: it opens through the election.
    await cluster.nodes[2]!.halt({ signal: "SIGKILL" });
    const proc: ChildProcess = spawn(process.execPath, [COORDINATOR_BIN, "serve", "--policy", file, "--interval", "1s", "--lock-ttl", "3s", "--inventory-wait", "2s"], {
      env: { ...process.env, ...env, LANEKEEPER_INSTANCE: "serve-x", LANEKEEPER_LOG_LEVEL: "info" },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    let exitCode: number | null | undefined;
    proc.once("exit", (c) => (exitCode = c));
    try {
      await until(async () => ((await lock.holderInfo())?.instance === "serve-x" ? true : undefined), "serve-x to lead", 60_000);
      await cluster.nodes[2]!.resume();
      await cluster.waitForJetStream();
      const log = (): Promise<string> => readFile(logPath, "utf8");
      await until(async () => ((await log()).includes("leading under a new fencing epoch") ? true : undefined), "serve-x to move the fence", 30_000);

      await cluster.haltAll({ signal: "SIGKILL" });
      await until(async () => ((await log()).includes('"leadership lost"') ? true : undefined), "serve-x to step down", 30_000);
      await new Promise((r) => setTimeout(r, 10_000));
      expect(exitCode, await log()).toBeUndefined();
      await cluster.resumeAll();

      // Back: it leads again (a new hold of the lock, a new fencing epoch) without a restart.
      await until(async () => ((await log()).match(/leading under a new fencing epoch/g)?.length === 2 ? true : undefined), "serve-x to lead again", 60_000);
      expect(exitCode).toBeUndefined();
      expect((await lock.holderInfo())?.instance).toBe("serve-x");
      const text = await log();
      expect(text).toContain("NATS trouble");
      // It did not act on what it read before the outage: it waited for a fresh view first (no hosts here: at once).
      expect(text.indexOf("fresh inventories from every host since NATS came back")).toBeGreaterThan(text.indexOf('"leadership lost"'));
    } finally {
      proc.kill("SIGTERM");
      await new Promise((r) => (exitCode !== undefined ? r(undefined) : proc.once("exit", r)));
      await nc.close();
    }
    expect(exitCode).toBe(0);
  }, 240_000);
});
