// Signed intents end to end with every real component: a real `lanekeeper-agent run` child process (the
// agent CLI, its LaneManager and SystemdRuntime) inside a real systemd sandbox, the runner emulator registering
// with the GitHub emulator, nats-server with the per-host permission config, and the coordinator's dispatch
// library in this process (Dispatcher, lk_sequences KV, result verification, inventory collector). One lane goes
// through create, drain, stop, start, restart and remove; a crash (kill -9) of the agent and a replay of a
// captured intent after the restart follow.
import { readFile } from "node:fs/promises";
import { connect, type NatsConnection } from "nats";
import {
  Backend,
  canonicalLabels,
  LaneMode,
  LaneState,
  decodeEnvelope,
  parseSealingPublicKey,
  RejectReason,
  ResultPayload,
  parseSigningPublicKey,
  ResultStatus,
  signingKeyFromPem,
  type LaneSpec,
  type SigningKey,
} from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dispatcher, isRemoveDone } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { buildSignedIntent } from "../../packages/coordinator/src/dispatch/intent-builder.js";
import { InventoryCollector } from "../../packages/coordinator/src/dispatch/inventory-collector.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { FLEET_COORDINATOR_NATS_USER, FLEET_NATS_PASSWORD_ENV, FLEET_RUNNER_VERSION } from "../harness/src/fleet-constants.js";
import type { Fleet } from "../harness/src/fleet-types.js";
import { startFleet } from "../harness/src/fleet.js";
import { waitUntil } from "../harness/src/process-util.js";

const HOST = "build01";
const SCOPE = "acme/api";
const POOL = "linux-x64";
let fleet: Fleet;
let nc: NatsConnection;
let key: SigningKey;
let hosts: StaticHostRegistry;
let sequences: KvSequenceAllocator;
let dispatcher: Dispatcher;
let collector: InventoryCollector;

async function githubToken(kind: "registration-token" | "remove-token"): Promise<Buffer> {
  const res = await fetch(`${fleet.github.apiUrl}/repos/${SCOPE}/actions/runners/${kind}`, {
    method: "POST",
    headers: { authorization: `token ${fleet.github.token}`, accept: "application/vnd.github+json" },
  });
  if (!res.ok) throw new Error(`${kind}: ${res.status}`);
  return Buffer.from(((await res.json()) as { token: string }).token);
}

function spec(laneId: string): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    labels: canonicalLabels({ laneId, hostId: HOST, pool: POOL, capabilityLabels: ["linux", "x64", "lanes-systemd"] }),
    runnerGroup: "",
    githubUrl: fleet.github.webUrl(SCOPE),
    runnerVersion: FLEET_RUNNER_VERSION,
    image: "",
    limits: undefined,
    runnerDownload: undefined,
  };
}

beforeAll(async () => {
  fleet = await startFleet({
    agents: [{ hostId: HOST, runtime: "systemd" }],
    handmade: { systemd: true, container: false, githubOnly: false },
  });
  nc = await connect({ servers: fleet.nats.url, user: FLEET_COORDINATOR_NATS_USER, pass: fleet.coordinatorEnv[FLEET_NATS_PASSWORD_ENV] });
  key = signingKeyFromPem(await readFile(fleet.coordinatorKeyPath, "utf8"));
  const bundle = fleet.agent(HOST).bundle;
  hosts = new StaticHostRegistry([
    { hostId: HOST, identityKey: parseSigningPublicKey(bundle.identityKey), sealingKey: parseSealingPublicKey(bundle.sealingKey) },
  ]);
  const js = nc.jetstream();
  sequences = await KvSequenceAllocator.open(js, { bucket: "lk_sequences_it" });
  collector = await InventoryCollector.open(js, { hosts, bucket: "lk_inventory_it" });
  collector.start(nc);
  dispatcher = new Dispatcher({ nc, signingKey: key, sequences, hosts, requestTimeoutMs: 90_000, agentHwm: (h) => collector.agentHwm(h) });
}, 300_000);

afterAll(async () => {
  await collector?.stop();
  await nc?.close();
  await fleet?.stop();
}, 120_000);

const runnerOnline = (name: string) =>
  waitUntil(
    async () => {
      const r = (await fleet.github.control.listRunners()).find((x) => x.name === name);
      return r?.status === "online" ? r : undefined;
    },
    { timeoutMs: 90_000, what: `runner ${name} online` },
  );

describe("signed intents to a real agent process with the real LaneManager (systemd sandbox)", () => {
  it("create, drain, stop, start, restart, remove", async () => {
    const create = await dispatcher.dispatch({ hostId: HOST, action: { kind: "create", spec: spec("it-1"), registration: await githubToken("registration-token") } });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "", message: "", hostId: HOST });
    expect(create.result.observed?.runtimeName).toBe("lanekeeper-lane-it-1.service");
    await runnerOnline("it-1");

    const drain = await dispatcher.dispatch({ hostId: HOST, action: { kind: "drain", laneId: "it-1" } });
    expect(drain.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(drain.result.observed?.draining).toBe(true);

    const stop = await dispatcher.dispatch({ hostId: HOST, action: { kind: "stop", laneId: "it-1" } });
    expect(stop.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(stop.result.observed?.state).toBe(LaneState.LANE_STATE_STOPPED);
    const active = await fleet.agent(HOST).sandbox!.systemctl("is-active", "lanekeeper-lane-it-1.service");
    expect(active.stdout.trim()).not.toBe("active");

    const start = await dispatcher.dispatch({ hostId: HOST, action: { kind: "start", laneId: "it-1" } });
    expect(start.result.observed?.state).toBe(LaneState.LANE_STATE_RUNNING);
    await runnerOnline("it-1");

    const restart = await dispatcher.dispatch({ hostId: HOST, action: { kind: "restart", laneId: "it-1" } });
    expect(restart.result.status).toBe(ResultStatus.RESULT_STATUS_OK);

    const remove = await dispatcher.dispatch({ hostId: HOST, action: { kind: "remove", laneId: "it-1", removeToken: await githubToken("remove-token") } });
    expect(isRemoveDone(remove.result)).toBe(true);
    await waitUntil(async () => ((await fleet.github.control.listRunners()).some((r) => r.name === "it-1") ? undefined : true), {
      timeoutMs: 60_000,
      what: "registration removed",
    });
    // The hand-made unit beside it was never touched.
    expect(await fleet.handmade.verifyUntouched()).toEqual([]);
  });

  it("the agent's signed inventory reaches the coordinator's KV with its intent high-water mark", async () => {
    const stored = await waitUntil(async () => {
      const s = await collector.latest(HOST);
      return s !== undefined && s.snapshot.intentHwm >= 6 ? s : undefined;
    }, { timeoutMs: 60_000, what: "inventory with hwm" });
    expect(stored.snapshot.controlEnabled).toBe(true);
    expect(stored.snapshot.keysetVersion).toBe(1);
    expect(stored.snapshot.unmanaged.map((u) => u.name).join(" ")).toMatch(/handmade/);
  });

  it("kill -9 and restart: a captured intent is never run again (cached result, or REPLAY when the crash beat the result's flush)", async () => {
    const agent = fleet.agent(HOST);
    const host = hosts.host(HOST)!;
    const create = await dispatcher.dispatch({ hostId: HOST, action: { kind: "create", spec: spec("it-2"), registration: await githubToken("registration-token") } });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "" });
    const captured = buildSignedIntent({
      hostId: HOST,
      hostSealingKey: host.sealingKey,
      sequence: await sequences.next(HOST),
      action: { kind: "hold", laneId: "it-2", reason: "captured" },
      signingKey: key,
      nowMs: Date.now(),
    });
    const first = await nc.request(`lk.v1.intent.${HOST}`, captured.envelope, { timeout: 60_000 });
    expect(ResultPayload.decode(decodeEnvelope("result", first.data).payload)).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "" });
    await agent.kill9();
    await agent.start();
    await waitUntil(async () => ((await agent.status()).natsState === "connected" ? true : undefined), { timeoutMs: 60_000, what: "agent back on NATS" });
    const again = await nc.request(`lk.v1.intent.${HOST}`, captured.envelope, { timeout: 60_000 });
    const replayed = ResultPayload.decode(decodeEnvelope("result", again.data).payload);
    if (!Buffer.from(again.data).equals(Buffer.from(first.data))) {
      expect(replayed).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.REPLAY, intentId: captured.intent.intentId });
    }
    // The agent's own audit chain shows the hold carried out exactly once.
    const status = (await agent.cli(["status", "--json", "--audit", "200"])).json as {
      recentAudit?: { action: string; phase: string; laneId: string }[];
      recentIntents?: { intentId: string; action: string; laneId: string }[];
    };
    const holds = (status.recentAudit ?? []).filter((r) => r.laneId === "it-2" && r.action === "hold" && r.phase === "succeeded");
    expect(holds).toHaveLength(1);
    // The status shows the redelivery among the intents this agent answered since it restarted.
    expect(status.recentIntents).toContainEqual(expect.objectContaining({ intentId: captured.intent.intentId, action: "hold", laneId: "it-2" }));
    // Later intents are accepted above the persisted high-water mark.
    expect((await dispatcher.dispatch({ hostId: HOST, action: { kind: "release", laneId: "it-2" } })).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    const rm = await dispatcher.dispatch({ hostId: HOST, action: { kind: "remove", laneId: "it-2", removeToken: await githubToken("remove-token") } });
    expect(isRemoveDone(rm.result)).toBe(true);
  });

  it("a signed intent the host refuses is in the host's own audit chain, with its reason", async () => {
    const refused = await dispatcher.dispatch({ hostId: HOST, action: { kind: "hold", laneId: "no-such-lane", reason: "x" } });
    expect(refused.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.LANE_NOT_FOUND });
    const audited = await waitUntil(async () => {
      const st = (await fleet.agent(HOST).cli(["status", "--json", "--audit", "20"])).json as {
        recentAudit?: { action: string; phase: string; laneId?: string; reasonCode?: string }[];
      };
      return st.recentAudit?.find((r) => r.laneId === "no-such-lane");
    }, { timeoutMs: 30_000, what: "the refusal in the agent's audit" });
    expect(audited).toMatchObject({ action: "hold", phase: "rejected", reasonCode: RejectReason.LANE_NOT_FOUND });
  });
});
