// Verified runner downloads end to end, with every real component: nats-server, a real `lanekeeper-agent run`
// in a systemd sandbox, the GitHub emulator serving real tarballs of the runner emulator from its downloads
// endpoint, and the coordinator's dispatch library. A lane is created on a version nobody staged (the agent
// fetches, verifies and unpacks it, and configures the runner with --disableupdate); an archive whose advertised
// checksum is wrong is refused and the create rolled back; a drained lane is upgraded in place to a newer
// version over a download cut short once (resumed), keeping its registration, and the unused version is pruned.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import {
  Backend,
  canonicalLabels,
  LaneMode,
  parseAgentConfig,
  parseSealingPublicKey,
  parseSigningPublicKey,
  RejectReason,
  ResultStatus,
  signingKeyFromPem,
  type LaneSpec,
  type RunnerDownload,
} from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
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
let dispatcher: Dispatcher;

async function api<T>(method: string, path: string): Promise<T> {
  const res = await fetch(`${fleet.github.apiUrl}/repos/${SCOPE}/actions/runners/${path}`, {
    method,
    headers: { authorization: `token ${fleet.github.token}`, accept: "application/vnd.github+json" },
  });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** The linux-x64 entry of `version` from the scope's downloads endpoint, as the coordinator reads it. */
async function download(version: string): Promise<RunnerDownload> {
  const list = await api<{ os: string; architecture: string; filename: string; download_url: string; sha256_checksum?: string }[]>("GET", "downloads");
  const e = list.find((d) => d.os === "linux" && d.architecture === "x64" && d.filename === `actions-runner-linux-x64-${version}.tar.gz`);
  if (e?.sha256_checksum === undefined) throw new Error(`no linux-x64 ${version} in downloads`);
  return { url: e.download_url, sha256: e.sha256_checksum, sizeBytes: 0 };
}

function spec(laneId: string, runnerVersion: string, runnerDownload: RunnerDownload): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    labels: canonicalLabels({ laneId, hostId: HOST, pool: POOL, capabilityLabels: ["linux", "x64"] }),
    runnerGroup: "",
    githubUrl: fleet.github.webUrl(SCOPE),
    runnerVersion,
    image: "",
    limits: undefined,
    runnerDownload,
  };
}

const registration = async (): Promise<Buffer> => Buffer.from((await api<{ token: string }>("POST", "registration-token")).token);
let distPath = "";
const runnerDist = (): string => distPath;

beforeAll(async () => {
  fleet = await startFleet({ agents: [{ hostId: HOST, runtime: "systemd" }], handmade: { systemd: false, container: false, githubOnly: false } });
  nc = await connect({ servers: fleet.nats.url, user: FLEET_COORDINATOR_NATS_USER, pass: fleet.coordinatorEnv[FLEET_NATS_PASSWORD_ENV] });
  distPath = parseAgentConfig(await readFile(fleet.agent(HOST).configPath, "utf8")).runnerDistPath;
  const key = signingKeyFromPem(await readFile(fleet.coordinatorKeyPath, "utf8"));
  const bundle = fleet.agent(HOST).bundle;
  const hosts = new StaticHostRegistry([{ hostId: HOST, identityKey: parseSigningPublicKey(bundle.identityKey), sealingKey: parseSealingPublicKey(bundle.sealingKey) }]);
  const sequences = await KvSequenceAllocator.open(nc.jetstream(), { bucket: "lk_sequences_dl" });
  dispatcher = new Dispatcher({ nc, signingKey: key, sequences, hosts, requestTimeoutMs: 90_000 });
}, 300_000);

afterAll(async () => {
  await nc?.close();
  await fleet?.stop();
}, 120_000);

const runnerOnline = (name: string, version: string) =>
  waitUntil(
    async () => {
      const r = (await fleet.github.control.listRunners()).find((x) => x.name === name);
      return r?.status === "online" && r.version === version ? r : undefined;
    },
    { timeoutMs: 90_000, what: `runner ${name} online with ${version}` },
  );

describe("verified runner downloads through a real agent (systemd sandbox) and the GitHub emulator", () => {
  it("creates a lane on a version nobody staged: fetched, verified, unpacked, configured with --disableupdate", async () => {
    await fleet.github.control.publishRunnerVersion("2.337.0");
    const d = await download("2.337.0");
    const create = await dispatcher.dispatch({ hostId: HOST, action: { kind: "create", spec: spec("dl-1", "2.337.0", d), registration: await registration() } });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "" });
    expect(create.result.observed?.runnerVersion).toBe("2.337.0");
    await runnerOnline("dl-1", "2.337.0");
    // The runner writes its settings with a UTF-8 BOM, as the real one does.
    const text = (await readFile(join(fleet.agent(HOST).laneRoot, "dl-1", "runner", ".runner"), "utf8")).replace(/^\uFEFF/, "");
    const settings = JSON.parse(text) as { disableUpdate?: boolean };
    expect(settings.disableUpdate).toBe(true);
    // The operator-staged version is still there beside the verified one.
    expect((await readdir(runnerDist())).sort()).toEqual([FLEET_RUNNER_VERSION, `2.337.0-${d.sha256.slice(0, 12)}`].sort());
  });

  it("refuses an archive whose checksum is not the advertised one, and leaves no lane behind", async () => {
    await fleet.github.control.publishRunnerVersion("2.338.0");
    await fleet.github.control.setRunnerReleaseFaults({ wrongChecksum: true });
    const d = await download("2.338.0");
    await fleet.github.control.setRunnerReleaseFaults({ wrongChecksum: false });
    const create = await dispatcher.dispatch({ hostId: HOST, action: { kind: "create", spec: spec("dl-bad", "2.338.0", d), registration: await registration() } });
    expect(create.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_FAILED, reasonCode: "RUNNER_CHECKSUM_MISMATCH" });
    expect(await readdir(fleet.agent(HOST).laneRoot)).not.toContain("dl-bad");
    expect((await readdir(runnerDist())).some((n) => n.startsWith("2.338.0"))).toBe(false);
  });

  it("a lane that is not drained is refused (LANE_BUSY); a drained one is upgraded in place over a resumed download, registration kept", async () => {
    await fleet.github.control.publishRunnerVersion("2.339.0");
    const before = await runnerOnline("dl-1", "2.337.0");
    const d = await download("2.339.0");
    const busy = await dispatcher.dispatch({ hostId: HOST, action: { kind: "upgrade", laneId: "dl-1", runnerVersion: "2.339.0", runnerDownload: d, image: "" } });
    expect(busy.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.LANE_BUSY });

    expect((await dispatcher.dispatch({ hostId: HOST, action: { kind: "drain", laneId: "dl-1" } })).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    // The first archive response is cut after 2000 bytes: the agent resumes it with a Range request.
    await fleet.github.control.setRunnerReleaseFaults({ truncate: { count: 1, afterBytes: 2000 } });
    const up = await dispatcher.dispatch({ hostId: HOST, action: { kind: "upgrade", laneId: "dl-1", runnerVersion: "2.339.0", runnerDownload: d, image: "" } });
    expect(up.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "" });
    expect(up.result.observed?.runnerVersion).toBe("2.339.0");
    const after = await runnerOnline("dl-1", "2.339.0");
    expect(after.id).toBe(before.id);
    // 2.337.0 is no lane's any more but the upgraded lane's rollback target: kept. The staged version is the operator's.
    const old = (await readdir(runnerDist())).find((n) => n.startsWith("2.337.0-"));
    expect((await readdir(runnerDist())).sort()).toEqual([FLEET_RUNNER_VERSION, old, `2.339.0-${d.sha256.slice(0, 12)}`].sort());
  });

  it("a rollback to the version GitHub no longer lists (no download) uses the copy the host verified, and keeps the one it left", async () => {
    const back = await dispatcher.dispatch({ hostId: HOST, action: { kind: "upgrade", laneId: "dl-1", runnerVersion: "2.337.0", image: "" } });
    expect(back.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, reasonCode: "" });
    expect(back.result.observed?.runnerVersion).toBe("2.337.0");
    await runnerOnline("dl-1", "2.337.0");
    // 2.339.0 is now the rollback target; nothing else is left.
    expect((await readdir(runnerDist())).map((n) => n.replace(/-[0-9a-f]{12}$/, "")).sort()).toEqual([FLEET_RUNNER_VERSION, "2.337.0", "2.339.0"].sort());
  });
});
