// The agent's allowlist travels in its signed inventory to the planner: a real AgentDaemon (config parsed from
// YAML, keys from `init`, no systemd or container engine on this host) with the real NATS intake and inventory
// publisher, nats-server with lanekeeper's per-host permissions, and the coordinator's InventoryCollector
// (JetStream KV) whose verified snapshot is mapped into the planner's HostInventory.
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { createLogger, formatTrustFile, generateSigningKey, parseAgentConfig } from "@lanekeeper/shared";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentDaemon } from "../../packages/agent/src/agent-daemon.js";
import { initAgent } from "../../packages/agent/src/agent-identity.js";
import { InstanceLock } from "../../packages/agent/src/instance-lock.js";
import { startAgentIntake, type AgentIntakeHandle } from "../../packages/agent/src/intake/agent-intake.js";
import { toHostInventory } from "../../packages/coordinator/src/observe/inventory-source.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { InventoryCollector } from "../../packages/coordinator/src/dispatch/inventory-collector.js";
import { initialKeySet } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";
import { makeTempDir, waitUntil } from "../harness/src/process-util.js";

const HOST = "build07";
const IMAGE = `ghcr.io/acme/runner@sha256:${"c".repeat(64)}`;
const CONTROL = {
  enabled: true,
  scopes: ["acme/api", "org:acme"],
  pools: ["linux-x64", "linux-arm64"],
  backends: ["systemd", "container"],
  actions: ["create", "drain", "remove"],
  images: [IMAGE],
  maxLanes: 12,
};

let dir: string;
let nats: NatsServerHandle;
let coord: NatsConnection;
let lock: InstanceLock | undefined;
let daemon: AgentDaemon | undefined;
let intake: AgentIntakeHandle | undefined;
let collector: InventoryCollector | undefined;

beforeAll(async () => {
  dir = await makeTempDir("lk-inv-allowlist-");
  const agentUser = { hostId: HOST, user: `agent-${HOST}`, password: randomBytes(24).toString("base64url") };
  const coordinatorUser = { user: "coordinator", password: randomBytes(24).toString("base64url") };
  nats = await startNatsServer({ users: { agents: [agentUser], coordinator: coordinatorUser } });
  const stateDir = join(dir, "state");
  const bundle = await initAgent({ hostId: HOST, stateDir, configPath: join(dir, "init-agent.yaml") });
  const trustFile = join(dir, "trust.json");
  await writeFile(trustFile, formatTrustFile(initialKeySet(generateSigningKey(), generateSigningKey(), { nowMs: Date.now() - 60_000 })));
  await mkdir(join(dir, "units"));
  const config = parseAgentConfig(
    stringify({
      hostId: HOST,
      nats: { url: nats.url, user: agentUser.user, password: agentUser.password },
      identityKeyFile: join(stateDir, "identity.key"),
      sealingKeyFile: join(stateDir, "sealing.key"),
      trustFile,
      stateDir,
      laneRoot: join(dir, "lanes"),
      unitDir: join(dir, "units"),
      statusSocket: join(dir, "agent.sock"),
      runnerDistPath: join(dir, "dist"),
      runAsUser: "root",
      // No engine here: the container backend is configured but off, which must not change what is reported.
      containerSocket: join(dir, "no-engine.sock"),
      inventoryIntervalMs: 500,
      health: { intervalMs: 60_000 },
      control: CONTROL,
    }),
  );
  const log = createLogger({ component: "agent", level: "silent" });
  lock = await InstanceLock.acquire(config.stateDir);
  daemon = await AgentDaemon.start({ config, log, lock });
  intake = await startAgentIntake({ daemon, log });

  coord = await connect({ servers: nats.url, user: coordinatorUser.user, pass: coordinatorUser.password });
  const hosts = new StaticHostRegistry([
    { hostId: HOST, identityKey: Buffer.from(bundle.identityKey, "base64"), sealingKey: Buffer.from(bundle.sealingKey, "base64") },
  ]);
  collector = await InventoryCollector.open(coord.jetstream(), { hosts });
  collector.start(coord);
  await intake.connected;
}, 120_000);

afterAll(async () => {
  await collector?.stop();
  await intake?.stop();
  await daemon?.stop();
  await lock?.release();
  await coord?.close();
  await nats?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("inventory allowlist", () => {
  it("the agent config's control arrives, signed and verified, as HostInventory.allowlist", async () => {
    const stored = await waitUntil(() => collector!.latest(HOST), { timeoutMs: 60_000, what: "a verified inventory of the agent" });
    const inv = toHostInventory({ snapshot: stored.snapshot, receivedAtMs: Date.now() });
    expect(inv.hostId).toBe(HOST);
    expect(inv.controlEnabled).toBe(true);
    expect(inv.allowlist).toEqual({
      scopes: CONTROL.scopes,
      pools: CONTROL.pools,
      backends: CONTROL.backends,
      images: CONTROL.images,
      actions: CONTROL.actions,
      maxLanes: CONTROL.maxLanes,
    });
  });
});
