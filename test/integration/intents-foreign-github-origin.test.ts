// security-cases group 14 with every real component: a real `lanekeeper-agent run` process in a systemd sandbox,
// nats-server, the fleet's GitHub emulator (the agent's pinned origin, allowed through
// github.allowInsecureHttpOrigins because it is plain http on loopback), and a SECOND GitHub emulator standing in
// for the attacker's server. A create signed by the real coordinator key for an allowed scope, but whose runner
// URL points at the attacker, is refused with GITHUB_ORIGIN_NOT_ALLOWED and nothing reaches the attacker: no
// runner registers there, no runner-protocol call arrives, no unit is written. The same create pointed at the
// pinned origin registers, so the refusal is the pin and not a broken setup.
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import {
  Backend,
  canonicalLabels,
  LaneMode,
  parseSealingPublicKey,
  parseSigningPublicKey,
  RejectReason,
  ResultStatus,
  signingKeyFromPem,
  type LaneSpec,
} from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { startGitHubEmulator, type GitHubEmulator } from "../harness/src/github-emulator/server.js";
import { FLEET_COORDINATOR_NATS_USER, FLEET_NATS_PASSWORD_ENV, FLEET_RUNNER_VERSION } from "../harness/src/fleet-constants.js";
import { startFleet } from "../harness/src/fleet.js";
import type { Fleet } from "../harness/src/fleet-types.js";
import { waitUntil } from "../harness/src/process-util.js";

const HOST = "build01";
const SCOPE = "acme/api";
const POOL = "linux-x64";
let fleet: Fleet;
let attacker: GitHubEmulator;
let nc: NatsConnection;
let dispatcher: Dispatcher;

async function registrationToken(gh: GitHubEmulator): Promise<Buffer> {
  const res = await fetch(`${gh.apiUrl}/repos/${SCOPE}/actions/runners/registration-token`, {
    method: "POST",
    headers: { authorization: `token ${gh.token}`, accept: "application/vnd.github+json" },
  });
  if (!res.ok) throw new Error(`registration-token: ${res.status}`);
  return Buffer.from(((await res.json()) as { token: string }).token);
}

function spec(laneId: string, githubUrl: string): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    labels: canonicalLabels({ laneId, hostId: HOST, pool: POOL, capabilityLabels: ["linux", "x64", "lanes-systemd"] }),
    runnerGroup: "",
    githubUrl,
    runnerVersion: FLEET_RUNNER_VERSION,
    image: "",
    limits: undefined,
    runnerDownload: undefined,
  };
}

beforeAll(async () => {
  // The attacker's server knows the scope too, so a runner pointed at it would register there happily.
  attacker = await startGitHubEmulator({ repos: [SCOPE] });
  fleet = await startFleet({
    agents: [{ hostId: HOST, runtime: "systemd" }],
    handmade: { systemd: false, container: false, githubOnly: false },
  });
  nc = await connect({ servers: fleet.nats.url, user: FLEET_COORDINATOR_NATS_USER, pass: fleet.coordinatorEnv[FLEET_NATS_PASSWORD_ENV] });
  const key = signingKeyFromPem(await readFile(fleet.coordinatorKeyPath, "utf8"));
  const bundle = fleet.agent(HOST).bundle;
  const hosts = new StaticHostRegistry([
    { hostId: HOST, identityKey: parseSigningPublicKey(bundle.identityKey), sealingKey: parseSealingPublicKey(bundle.sealingKey) },
  ]);
  const sequences = await KvSequenceAllocator.open(nc.jetstream(), { bucket: "lk_sequences_origin_it" });
  dispatcher = new Dispatcher({ nc, signingKey: key, sequences, hosts, requestTimeoutMs: 90_000 });
}, 300_000);

afterAll(async () => {
  await nc?.close();
  await fleet?.stop();
  await attacker?.stop();
}, 120_000);

describe("a create pointing the runner at another GitHub server (stolen coordinator key)", () => {
  it("the agent warned at start that a plain-http origin is allowed", async () => {
    const log = await readFile(fleet.agent(HOST).logPath, "utf8");
    expect(log).toContain("INSECURE: github.allowInsecureHttpOrigins");
  });

  it("is refused before any runtime call, and nothing reaches the attacker's emulator", async () => {
    const attackerUrl = attacker.webUrl(SCOPE);
    expect(new URL(attackerUrl).origin).not.toBe(new URL(fleet.github.url).origin);
    const create = await dispatcher.dispatch({
      hostId: HOST,
      action: { kind: "create", spec: spec("evil-1", attackerUrl), registration: await registrationToken(attacker) },
    });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.GITHUB_ORIGIN_NOT_ALLOWED });
    expect(create.result.message).toMatch(/^runner URL refused: its port is not the allowed one/);

    // Nothing was written on the host: no unit, no lane directory.
    const agent = fleet.agent(HOST);
    expect(existsSync(join(agent.sandbox!.unitDir, "lanekeeper-lane-evil-1.service"))).toBe(false);
    expect(existsSync(join(agent.laneRoot, "evil-1"))).toBe(false);
    // Give a runner that would have started every chance to call home, then look at the attacker's state.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await attacker.control.listRunners()).toEqual([]);
    expect((await attacker.control.stats()).runnerProtocol).toEqual({});
  });

  it("the same create pointed at the pinned origin registers there (the refusal above is the pin)", async () => {
    const create = await dispatcher.dispatch({
      hostId: HOST,
      action: { kind: "create", spec: spec("good-1", fleet.github.webUrl(SCOPE)), registration: await registrationToken(fleet.github) },
    });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK });
    await waitUntil(
      async () => ((await fleet.github.control.listRunners()).find((r) => r.name === "good-1")?.status === "online" ? true : undefined),
      { timeoutMs: 90_000, what: "runner good-1 online on the pinned origin" },
    );
    expect(await attacker.control.listRunners()).toEqual([]);
  });
});
