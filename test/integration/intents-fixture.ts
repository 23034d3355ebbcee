// Real nats-server (JetStream, lanekeeper's per-host permissions from renderNatsConfig), a coordinator with the
// dispatch library (KV sequences, dispatcher, result verifier, inventory collector), and in-process agents
// (Intake + InventoryPublisher on their own NATS logins, file-backed replay state in temp dirs). Keys and
// passwords are generated here and never printed.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import {
  Backend,
  formatTrustFile,
  generateSealingKey,
  generateSigningKey,
  LaneMode,
  type LaneSpec,
  type SealingKey,
  type SigningKey,
  type TrustedKeySet,
} from "@lanekeeper/shared";
import { AgentTrust, keySetUpdateHandler } from "../../packages/agent/src/intake/agent-trust.js";
import type { IntakeControl } from "../../packages/agent/src/intake/intake-policy.js";
import { Intake, type IntakeOutcome } from "../../packages/agent/src/intake/intake.js";
import { InventoryPublisher } from "../../packages/agent/src/intake/inventory-publisher.js";
import type { LaneExecutor } from "../../packages/agent/src/intake/lane-executor.js";
import { RecordingExecutor } from "@lanekeeper/testing";
import { ReplayStore } from "../../packages/agent/src/intake/replay-store.js";
import { FileStateStore } from "../../packages/agent/src/intake/state-store.js";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { InventoryCollector } from "../../packages/coordinator/src/dispatch/inventory-collector.js";
import { initialKeySet } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";
import type { NatsAgentUser, NatsCoordinatorUser } from "../harness/src/nats-permissions.js";

export const SCOPE = "acme/api";
export const POOL = "linux-x64";

const password = (): string => randomBytes(24).toString("base64url");

export function allowAll(): IntakeControl {
  return {
    enabled: true,
    scopes: [SCOPE],
    pools: [POOL],
    backends: ["systemd", "container"],
    actions: ["create", "drain", "undrain", "start", "stop", "restart", "remove", "hold", "release", "arm"],
    images: [],
    maxLanes: 1000,
    githubOrigins: ["https://github.com"],
    downloadOrigins: ["https://github.com"],
  };
}

export function laneSpec(laneId: string, hostId: string): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    labels: ["lk-managed", `lk-lane-${laneId}`, `lk-host-${hostId}`, `lk-pool-${POOL}`, "linux"],
    runnerGroup: "",
    githubUrl: "https://github.com/acme/api",
    runnerVersion: "2.330.0",
    image: "",
    limits: undefined,
    runnerDownload: undefined,
  };
}

/** One in-process agent. */
export interface TestAgent {
  hostId: string;
  user: NatsAgentUser;
  dir: string;
  identityKey: SigningKey;
  sealingKey: SealingKey;
  executor: LaneExecutor;
  nc: NatsConnection;
  replay: ReplayStore;
  trust: AgentTrust;
  intake: Intake;
  inventory: InventoryPublisher;
  outcomes: IntakeOutcome[];
  control: IntakeControl;
  /** Stop intake, inventory and replay store (the NATS connection stays). */
  stop(): Promise<void>;
  /** Stop and start again on the same state dir (an agent restart). */
  restart(): Promise<void>;
}

export interface IntentsWorld {
  nats: NatsServerHandle;
  coordinatorUser: NatsCoordinatorUser;
  coordinatorKey: SigningKey;
  /** The offline root key pinned in every agent's trust file: the only key that signs key-set updates. */
  rootKey: SigningKey;
  keySet: TrustedKeySet;
  coord: NatsConnection;
  hosts: StaticHostRegistry;
  sequences: KvSequenceAllocator;
  collector: InventoryCollector;
  dispatcher: Dispatcher;
  agents: Map<string, TestAgent>;
  agent(hostId: string): TestAgent;
  close(): Promise<void>;
}

export interface WorldOptions {
  hostIds: string[];
  executor?: (hostId: string) => LaneExecutor;
  /** Request timeout of the dispatcher. */
  requestTimeoutMs?: number;
  inventoryIntervalMs?: number;
  sequenceBlock?: number;
  /** Clock skew the agents tolerate (and use for the floor rule). @default CLOCK_SKEW_MS */
  skewMs?: number;
  /** The dispatcher's not-before slack. */
  notBeforeSlackMs?: number;
  beforeFloorRetryMs?: number;
}

export async function startIntentsWorld(opts: WorldOptions): Promise<IntentsWorld> {
  const users = opts.hostIds.map((hostId): NatsAgentUser => ({ hostId, user: `agent-${hostId}`, password: password() }));
  const coordinatorUser: NatsCoordinatorUser = { user: "coordinator", password: password() };
  const nats = await startNatsServer({ users: { agents: users, coordinator: coordinatorUser } });
  const cleanup: (() => Promise<unknown>)[] = [() => nats.stop()];
  try {
    const coordinatorKey = generateSigningKey();
    const rootKey = generateSigningKey();
    const keySet = initialKeySet(coordinatorKey, rootKey, { nowMs: Date.now() - 60_000 });
    const coord = await connect({ servers: nats.url, user: coordinatorUser.user, pass: coordinatorUser.password });
    cleanup.unshift(() => coord.close());
    const js = coord.jetstream();
    const sequences = await KvSequenceAllocator.open(js, { block: opts.sequenceBlock ?? 1 });

    const agents = new Map<string, TestAgent>();
    for (const user of users) {
      const agent = await startAgent(nats, user, keySet, opts.executor?.(user.hostId) ?? new RecordingExecutor(), opts.inventoryIntervalMs, opts.skewMs);
      agents.set(user.hostId, agent);
      cleanup.unshift(async () => {
        await agent.stop();
        await agent.nc.close();
        await rm(agent.dir, { recursive: true, force: true });
      });
    }
    const hosts = new StaticHostRegistry(
      [...agents.values()].map((a) => ({ hostId: a.hostId, identityKey: a.identityKey.publicKey, sealingKey: a.sealingKey.publicKey })),
    );
    const collector = await InventoryCollector.open(js, { hosts });
    collector.start(coord);
    cleanup.unshift(() => collector.stop());
    const dispatcher = new Dispatcher({
      nc: coord,
      signingKey: coordinatorKey,
      sequences,
      hosts,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      agentHwm: (h) => collector.agentHwm(h),
      ...(opts.notBeforeSlackMs === undefined ? {} : { notBeforeSlackMs: opts.notBeforeSlackMs }),
      ...(opts.beforeFloorRetryMs === undefined ? {} : { beforeFloorRetryMs: opts.beforeFloorRetryMs }),
    });
    await coord.flush();
    return {
      nats,
      coordinatorUser,
      coordinatorKey,
      rootKey,
      keySet,
      coord,
      hosts,
      sequences,
      collector,
      dispatcher,
      agents,
      agent(hostId) {
        const a = agents.get(hostId);
        if (a === undefined) throw new Error(`no agent ${hostId}`);
        return a;
      },
      async close() {
        for (const c of cleanup) await c().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const c of cleanup) await c().catch(() => undefined);
    throw err;
  }
}

async function startAgent(
  nats: NatsServerHandle,
  user: NatsAgentUser,
  keySet: TrustedKeySet,
  executor: LaneExecutor,
  inventoryIntervalMs = 60_000,
  skewMs?: number,
): Promise<TestAgent> {
  const dir = await mkdtemp(join(tmpdir(), `lk-agent-${user.hostId}-`));
  await mkdir(join(dir, "etc"));
  const trustFile = join(dir, "etc", "trust.json");
  await writeFile(trustFile, formatTrustFile(keySet));
  await new FileStateStore(join(dir, "state"), user.hostId).initialize();
  const nc = await connect({ servers: nats.url, user: user.user, pass: user.password });
  const agent = {
    hostId: user.hostId,
    user,
    dir,
    identityKey: generateSigningKey(),
    sealingKey: generateSealingKey(),
    executor,
    nc,
    outcomes: [] as IntakeOutcome[],
    control: allowAll(),
  } as TestAgent;
  const boot = async (): Promise<void> => {
    const stateDir = join(dir, "state");
    const store = new FileStateStore(stateDir, user.hostId);
    await store.lock();
    const replay = await ReplayStore.open(store, { hostId: user.hostId, clock: { now: () => Date.now() }, ...(skewMs === undefined ? {} : { skewMs }) });
    const trust = await AgentTrust.load({ trustFile, stateDir, recordedVersion: replay.keysetVersion, clock: { now: () => Date.now() } });
    await replay.setKeysetVersion(trust.version);
    const inventory = new InventoryPublisher(nc, {
      hostId: user.hostId,
      identityKey: agent.identityKey,
      provider: async () => {
        const takenAtMs = Date.now();
        return { lanes: executor instanceof RecordingExecutor ? await listRecorded(executor) : [], unmanaged: [], agentVersion: "0.1.0-test", takenAtMs };
      },
      controlEnabled: () => agent.control.enabled,
      intentHwm: () => replay.hwm,
      keysetVersion: () => trust.version,
      intervalMs: inventoryIntervalMs,
      debounceMs: 50,
    });
    const intake = new Intake({
      hostId: user.hostId,
      identityKey: agent.identityKey,
      sealingKey: agent.sealingKey,
      trust,
      replay,
      executor,
      control: () => agent.control,
      onOutcome: (o) => agent.outcomes.push(o),
      onChange: () => inventory.notifyChange(),
      keySetUpdates: keySetUpdateHandler(trust, replay),
      ...(skewMs === undefined ? {} : { skewMs }),
    });
    intake.listen(nc);
    await nc.flush();
    inventory.start();
    Object.assign(agent, { replay, trust, intake, inventory });
    agent.stop = async () => {
      await inventory.stop();
      await intake.close();
      await replay.close();
      await store.unlock();
    };
  };
  await boot();
  agent.restart = async () => {
    await agent.stop();
    await boot();
  };
  return agent;
}

async function listRecorded(executor: RecordingExecutor) {
  const ids = new Set(executor.calls.filter((c) => c.laneId !== undefined).map((c) => c.laneId!));
  const out = [];
  for (const id of ids) {
    const lane = executor.lane(id);
    if (lane !== undefined) out.push(lane);
  }
  await Promise.resolve();
  return out;
}
