// The whole system, real parts only: the GitHub emulator, a real nats-server (JetStream, lanekeeper's per-host
// permissions), a real systemd (PID 1 of its own namespaces) running lanes with the runner emulator, an agent
// in-process with the real Intake, LaneManager, SystemdRuntime and InventoryPublisher on its own NATS login,
// and the coordinator's real parts: OctokitGitHubClient, KvLaneStore, KvSequenceAllocator, Dispatcher,
// InventoryCollector, CoordinatorAudit (local chain + LK_AUDIT stream) and ApplyEngine. Keys and passwords are
// generated here and never printed. Timing knobs are short so each suite runs in seconds.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import {
  formatTrustFile,
  generateSealingKey,
  generateSigningKey,
  parsePolicy,
  signingKeyToPem,
  type AuditRecord,
  type Policy,
  type SealingKey,
  type SigningKey,
  type TrustedKeySet,
} from "@lanekeeper/shared";
import { startGitHubEmulator, type GitHubEmulator } from "@lanekeeper/harness";
import {
  AgentTrust,
  FileStateStore,
  Intake,
  InventoryBuilder,
  InventoryPublisher,
  LaneManagerExecutor,
  ReplayStore,
  SystemdRuntime,
  keySetUpdateHandler,
  type IntakeControl,
  type LaneManager,
} from "../../packages/agent/src/index.js";
import { ApplyEngine, type ApplyEngineOptions, type ApplyRunOptions } from "../../packages/coordinator/src/apply/apply-engine.js";
import type { ApplyReport } from "../../packages/coordinator/src/apply/apply-events.js";
import type { LaneCommandDeps } from "../../packages/coordinator/src/apply/lane-commands.js";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import type { Plan, PlanOptions } from "../../packages/coordinator/src/plan/plan-types.js";
import { CollectorInventorySource } from "../../packages/coordinator/src/context/collector-inventory-source.js";
import { CoordinatorAudit } from "../../packages/coordinator/src/audit/coordinator-audit.js";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { InventoryCollector } from "../../packages/coordinator/src/dispatch/inventory-collector.js";
import { initialKeySet } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { OctokitGitHubClient } from "../../packages/coordinator/src/github/octokit-github-client.js";
import { RedactedSecret } from "../../packages/coordinator/src/github/redacted-secret.js";
import { KvLaneStore } from "../../packages/coordinator/src/lane-store-kv/kv-lane-store.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";
import type { NatsAgentUser, NatsCoordinatorUser } from "../harness/src/nats-permissions.js";
import { startSystemdSandbox, type SystemdSandbox } from "../harness/src/systemd-sandbox.js";
import { RunnerDist } from "../../packages/agent/src/runner-dist/runner-dist.js";
import { agentParts, HOST, installRunnerDist, laneManager, POOL, RUNNER_VERSION, sandboxRunner, SCOPE, type AgentParts } from "./agent-fixture.js";

export { HOST, POOL, SCOPE, RUNNER_VERSION };

const password = (): string => randomBytes(24).toString("base64url");

/** Knobs of {@link startApplyWorld}. */
export interface ApplyWorldOptions {
  /** Emulator faults and options. */
  readonly offlineAfterMs?: number;
  readonly inventoryIntervalMs?: number;
  readonly drain?: { settleMs: number; deadlineMs: number; pollMs: number };
  readonly verifyTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

/** Variations of the generated policy. */
export interface PolicyExtra {
  readonly capability?: string[];
  /** Another audit file (a second coordinator process must not share the fixture's open chain). */
  readonly auditFile?: string;
  /** Log in to NATS as the coordinator user with the password from this environment variable. */
  readonly natsPasswordEnv?: string;
  readonly drain?: { settleMs: number; deadlineMs: number; pollMs: number };
}

/** The in-process agent. */
export interface ApplyWorldAgent {
  readonly hostId: string;
  readonly identityKey: SigningKey;
  readonly sealingKey: SealingKey;
  readonly parts: AgentParts;
  readonly manager: LaneManager;
  readonly runtime: SystemdRuntime;
  readonly nc: NatsConnection;
  control: IntakeControl;
  readonly inventory: InventoryPublisher;
  /** The agent's trusted key set (installed trust file plus applied updates). */
  readonly trust: AgentTrust;
}

/** Everything a suite needs. */
export interface ApplyWorld {
  readonly gh: GitHubEmulator;
  readonly nats: NatsServerHandle;
  readonly sd: SystemdSandbox;
  readonly agent: ApplyWorldAgent;
  readonly coord: NatsConnection;
  readonly coordinatorKey: SigningKey;
  /** The offline root key the agent's trust file pins (signs key-set updates). */
  readonly rootKey: SigningKey;
  /** The key set the agent trusts (version 1: the coordinator key, active). */
  readonly keySet: TrustedKeySet;
  readonly github: OctokitGitHubClient;
  readonly store: KvLaneStore;
  readonly inventory: CollectorInventorySource;
  readonly collector: InventoryCollector;
  readonly dispatcher: Dispatcher;
  readonly audit: CoordinatorAudit;
  readonly auditPath: string;
  readonly dir: string;
  /** A policy with `count` lanes of acme/api/linux-x64 on the host. */
  policy(count: number, extra?: PolicyExtra): Policy;
  /** The same policy as YAML text (for the CLI). */
  policyText(count: number, extra?: PolicyExtra): string;
  /** The coordinator's NATS login (for a policy the CLI uses: natsUser + natsPasswordEnv). */
  readonly coordinatorUser: NatsCoordinatorUser;
  /** An apply engine over `policy`. */
  engine(policy: Policy, over?: Partial<ApplyEngineOptions>): ApplyEngine;
  /** Observe, plan and apply with `policy(count, extra)`. */
  apply(count: number, opts?: ApplyRunOptions, planOptions?: Omit<PlanOptions, "nowMs">, extra?: PolicyExtra): Promise<{ plan: Plan; report: ApplyReport }>;
  /** Dependencies of `runLaneCommand` with `policy(count)`. */
  laneDeps(count: number, over?: Partial<ApplyEngineOptions>): LaneCommandDeps;
  /** The local audit chain's records. */
  auditRecords(): Promise<AuditRecord[]>;
  /** The agent's audit chain's records. */
  agentAuditRecords(): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

/** Start the world (call from beforeAll; `close` from afterAll). */
export async function startApplyWorld(opts: ApplyWorldOptions = {}): Promise<ApplyWorld> {
  const cleanup: (() => Promise<unknown>)[] = [];
  const run = async (): Promise<void> => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  };
  try {
    const gh = await startGitHubEmulator({ repos: [SCOPE], offlineAfterMs: opts.offlineAfterMs ?? 1500 });
    cleanup.push(() => gh.stop());
    const agentUser: NatsAgentUser = { hostId: HOST, user: `agent-${HOST}`, password: password() };
    const coordinatorUser: NatsCoordinatorUser = { user: "coordinator", password: password() };
    const nats = await startNatsServer({ users: { agents: [agentUser], coordinator: coordinatorUser } });
    cleanup.push(() => nats.stop());
    const sd = await startSystemdSandbox();
    cleanup.push(() => sd.stop());
    const dir = await mkdtemp(join(tmpdir(), "lk-apply-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));

    // ---- coordinator key and the agent's trust in it
    const coordinatorKey = generateSigningKey();
    const rootKey = generateSigningKey();
    const keySet = initialKeySet(coordinatorKey, rootKey, { nowMs: Date.now() - 60_000 });

    // ---- the agent, in-process, real parts
    const agentRoot = join(sd.root, "agent");
    const parts = await agentParts(agentRoot);
    cleanup.push(() => parts.audit.close());
    const dist = await installRunnerDist(agentRoot);
    const runtime = new SystemdRuntime({
      hostId: HOST,
      unitDir: sd.unitDir,
      signer: parts.signer,
      dirs: parts.dirs,
      runnerDistPath: dist,
      // Verified downloads from the emulator's runner releases, as agent.yaml's runnerDownloads gives the daemon.
      runnerDist: new RunnerDist({
        distPath: dist,
        cacheDir: join(agentRoot, "runner-cache"),
        origins: [new URL(gh.url).origin],
        maxArchiveBytes: 256 * 1024 * 1024,
        maxUnpackedBytes: 1024 * 1024 * 1024,
      }),
      user: { name: "root", uid: 0, gid: 0, home: "/root" },
      systemctl: sandboxRunner((cmd, args, o) => sd.exec(cmd, args, o)),
      cgroupRoots: [sd.cgroupPath],
    });
    const manager = laneManager(parts, { systemd: runtime });
    const identityKey = parts.key;
    const sealingKey = generateSealingKey();
    const trustFile = join(agentRoot, "trust.json");
    await writeFile(trustFile, formatTrustFile(keySet));
    const intakeState = join(agentRoot, "intake");
    const stateStore = new FileStateStore(intakeState, HOST);
    await stateStore.initialize();
    await stateStore.lock();
    cleanup.push(() => stateStore.unlock());
    const replay = await ReplayStore.open(stateStore, { hostId: HOST, clock: { now: () => Date.now() } });
    cleanup.push(() => replay.close());
    const trust = await AgentTrust.load({ trustFile, stateDir: intakeState, recordedVersion: replay.keysetVersion, clock: { now: () => Date.now() } });
    await replay.setKeysetVersion(trust.version);
    const agentNc = await connect({ servers: nats.url, user: agentUser.user, pass: agentUser.password });
    cleanup.push(() => agentNc.close());
    const builder = new InventoryBuilder({ manager, runnerRoots: [], laneRoot: join(agentRoot, "lanes") });
    const inventoryPub = new InventoryPublisher(agentNc, {
      hostId: HOST,
      identityKey,
      provider: () => builder.build(0),
      controlEnabled: () => agent.control.enabled,
      intentHwm: () => replay.hwm,
      keysetVersion: () => trust.version,
      intervalMs: opts.inventoryIntervalMs ?? 1000,
      debounceMs: 30,
    });
    const agent: ApplyWorldAgent = {
      hostId: HOST,
      identityKey,
      sealingKey,
      parts,
      manager,
      runtime,
      nc: agentNc,
      inventory: inventoryPub,
      trust,
      control: {
        enabled: true,
        scopes: [SCOPE],
        pools: [POOL],
        backends: ["systemd"],
        actions: ["create", "drain", "undrain", "start", "stop", "restart", "remove", "hold", "release", "arm"],
        images: [],
        maxLanes: 10,
        // The emulator's plain-http loopback origin (agent.yaml: github.allowInsecureHttpOrigins).
        githubOrigins: [gh.url],
        downloadOrigins: [gh.url],
      },
    };
    const intake = new Intake({
      hostId: HOST,
      identityKey,
      sealingKey,
      trust,
      replay,
      executor: new LaneManagerExecutor(manager),
      control: () => agent.control,
      onChange: () => inventoryPub.notifyChange(),
      keySetUpdates: keySetUpdateHandler(trust, replay),
    });
    intake.listen(agentNc);
    cleanup.push(() => intake.close());
    await agentNc.flush();
    inventoryPub.start();
    cleanup.push(() => inventoryPub.stop());
    // The agent's health loop, as the daemon runs it.
    let healthStopped = false;
    let healthRun: Promise<void> = Promise.resolve();
    const health = setInterval(() => {
      if (healthStopped) return;
      healthRun = manager.superviseOnce().catch(() => undefined);
    }, 1000);
    cleanup.push(async () => {
      healthStopped = true;
      clearInterval(health);
      await healthRun;
    });

    // ---- the coordinator
    const coord = await connect({ servers: nats.url, user: coordinatorUser.user, pass: coordinatorUser.password });
    cleanup.push(() => coord.close());
    const js = coord.jetstream();
    const jsm = await coord.jetstreamManager();
    const hosts = new StaticHostRegistry([{ hostId: HOST, identityKey: identityKey.publicKey, sealingKey: sealingKey.publicKey }]);
    const sequences = await KvSequenceAllocator.open(js);
    const inventory = new CollectorInventorySource();
    const collector = await InventoryCollector.open(js, { hosts, onSnapshot: inventory.onSnapshot });
    inventory.attach(collector);
    collector.start(coord);
    cleanup.push(() => collector.stop());
    const dispatcher = new Dispatcher({
      nc: coord,
      signingKey: coordinatorKey,
      sequences,
      hosts,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      agentHwm: (h) => collector.agentHwm(h),
    });
    const store = await KvLaneStore.open(js);
    const auditPath = join(dir, "audit.jsonl");
    const audit = await CoordinatorAudit.open({ path: auditPath, js, jsm, instance: "test" });
    cleanup.push(() => audit.close());
    const github = new OctokitGitHubClient({ apiUrl: gh.apiUrl, credential: { kind: "token", token: new RedactedSecret(gh.token) }, retryBaseMs: 5 });
    const idKey = Buffer.from(identityKey.publicKey).toString("base64");
    const sealKey = Buffer.from(sealingKey.publicKey).toString("base64");
    const drain = opts.drain ?? { settleMs: 400, deadlineMs: 30_000, pollMs: 150 };
    const policyText = (count: number, extra: PolicyExtra = {}): string => {
      const d = extra.drain ?? drain;
      return [
        "github:",
        `  apiUrl: ${JSON.stringify(gh.apiUrl)}`,
        `  webUrl: ${JSON.stringify(gh.url)}`,
        "  auth: { tokenEnv: LK_TEST_GITHUB_TOKEN }",
        "coordinator:",
        `  keyFile: ${JSON.stringify(join(dir, "coordinator.pem"))}`,
        `  natsUrl: ${JSON.stringify(nats.url)}`,
        ...(extra.natsPasswordEnv === undefined ? [] : [`  natsUser: ${JSON.stringify(coordinatorUser.user)}`, `  natsPasswordEnv: ${extra.natsPasswordEnv}`]),
        `  auditFile: ${JSON.stringify(extra.auditFile ?? auditPath)}`,
        `  drain: { settleMs: ${d.settleMs}, deadlineMs: ${d.deadlineMs}, pollMs: ${d.pollMs} }`,
        "hosts:",
        `  ${HOST}:`,
        `    enrolled: { identityKey: ${JSON.stringify(idKey)}, sealingKey: ${JSON.stringify(sealKey)} }`,
        "    optIn: true",
        "    capacity: 4",
        "scopes:",
        `  ${JSON.stringify(SCOPE)}: { optIn: true }`,
        "pools:",
        `  ${POOL}:`,
        `    labels: ${JSON.stringify(extra.capability ?? ["linux"])}`,
        "    backend: systemd",
        `    runnerVersion: ${JSON.stringify(RUNNER_VERSION)}`,
        "lanes:",
        `  - { scope: ${JSON.stringify(SCOPE)}, pool: ${POOL}, count: ${count}, hosts: [${HOST}] }`,
        "",
      ].join("\n");
    };
    const policy = (count: number, extra: PolicyExtra = {}): Policy => parsePolicy(policyText(count, extra));
    await writeFile(join(dir, "coordinator.pem"), signingKeyToPem(coordinatorKey), { mode: 0o600 });
    await mkdir(dir, { recursive: true });
    const engine = (p: Policy, over: Partial<ApplyEngineOptions> = {}): ApplyEngine =>
      new ApplyEngine({
        policy: p,
        github,
        store,
        dispatcher,
        inventory,
        audit,
        verifyTimeoutMs: opts.verifyTimeoutMs ?? 30_000,
        verifyPollMs: 150,
        ...over,
      });
    const readChain = async (path: string): Promise<AuditRecord[]> =>
      (await readFile(path, "utf8").catch(() => ""))
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as AuditRecord);
    return {
      gh,
      nats,
      sd,
      agent,
      coord,
      coordinatorKey,
      rootKey,
      keySet,
      github,
      store,
      inventory,
      collector,
      dispatcher,
      audit,
      auditPath,
      dir,
      policy,
      policyText,
      coordinatorUser,
      engine,
      async apply(count, runOpts = {}, planOptions = {}, extra = {}) {
        const p = policy(count, extra);
        const { plan } = await observeAndPlan({ policy: p, github, store, inventory }, planOptions);
        return { plan, report: await engine(p).run(plan, runOpts) };
      },
      laneDeps(count, over = {}) {
        const p = policy(count);
        const e = engine(p, over);
        return { policy: p, github, store, inventory, dispatcher, audit, engine: e };
      },
      auditRecords: () => readChain(auditPath),
      agentAuditRecords: () => readChain(parts.auditPath),
      close: run,
    };
  } catch (err) {
    await run();
    throw err;
  }
}
