// The container backend against real Podman (Docker Engine API through dockerode), the runner image, the runner
// emulator and the GitHub emulator: persistent and ephemeral lanes, secrets never in Cmd/Env, stop refused while
// a job runs, health restart after kill -9, ownership guards (no labels, another host's labels, labels copied to
// another name, image not allowlisted) and a plain hand-made container asserted untouched at the end.
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import Docker from "dockerode";
import { Backend, LaneMode, LaneState, RejectReason, isRejectError, identityLabels } from "@lanekeeper/shared";
import {
  buildRunnerImage,
  makeTempDir,
  startGitHubEmulator,
  startPodmanService,
  type GitHubEmulator,
  type PodmanService,
  type RunnerImage,
} from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTAINER_LABELS, ContainerRuntime, type LaneManager } from "../../packages/agent/src/index.js";
import {
  agentParts,
  auditRecords,
  eventually,
  expectAuditTriple,
  HOST,
  laneManager,
  laneSpec,
  POOL,
  registrationToken,
  removeToken,
  runnerNamed,
  SCOPE,
  type AgentParts,
} from "./agent-fixture.js";

let gh: GitHubEmulator;
let podman: PodmanService;
let docker: Docker;
let image: RunnerImage;
let parts: AgentParts;
let rt: ContainerRuntime;
let lanes: LaneManager;
const suffix = Math.random().toString(36).slice(2, 8);
const HANDMADE = `handmade-runner-${suffix}`;
let handmadeBefore: { id: string; startedAt: string; labels: Record<string, string> };
const created: string[] = [];

function containerSpec(laneId: string, over: Parameters<typeof laneSpec>[2] = {}): ReturnType<typeof laneSpec> {
  return laneSpec(laneId, gh, { backend: Backend.BACKEND_CONTAINER, runnerVersion: "", image: image.digestReference, limits: { cpuMillis: 1000, memoryBytes: 512 * 1024 * 1024 }, ...over });
}

/** Longest wait for an engine operation while other suites use the same podman storage. */
const PODMAN_BUSY_MS = 120_000;

async function listenerPid(laneId: string): Promise<number | undefined> {
  const info = await docker.getContainer(`lanekeeper-lane-${laneId}`).inspect();
  if (!info.State.Running) return undefined;
  const { processTree } = await import("../../packages/agent/src/runtimes/proc-scan.js");
  for (const pid of await processTree(info.State.Pid)) {
    if ((await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim() === "Runner.Listener") return pid;
  }
  return undefined;
}

async function running(name: string): Promise<boolean> {
  return (await docker.getContainer(name).inspect()).State.Running;
}

async function expectReject(p: Promise<unknown>, reason: RejectReason): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRejectError(err) ? err.reason : err).toBe(reason);
}

async function jitConfig(name: string): Promise<Buffer> {
  const res = await fetch(`${gh.apiUrl}/repos/${SCOPE}/actions/runners/generate-jitconfig`, {
    method: "POST",
    headers: { authorization: `token ${gh.token}`, "content-type": "application/json" },
    body: JSON.stringify({ name, runner_group_id: 1, labels: identityLabels({ laneId: "e1", hostId: HOST, pool: POOL }) }),
  });
  expect(res.status).toBe(201);
  return Buffer.from(((await res.json()) as { encoded_jit_config: string }).encoded_jit_config);
}

beforeAll(async () => {
  [gh, podman, image] = await Promise.all([startGitHubEmulator({ repos: [SCOPE] }), startPodmanService(), buildRunnerImage()]);
  docker = new Docker({ socketPath: podman.socketPath });
  parts = await agentParts(await makeTempDir("lk-agent-ct-", tmpdir()));
  rt = new ContainerRuntime({ hostId: HOST, signer: parts.signer, dirs: parts.dirs, docker, allowedImages: [image.digestReference], networkMode: "host" });
  lanes = laneManager(parts, { container: rt });
  const hand = await docker.createContainer({ name: HANDMADE, Image: image.reference, Entrypoint: ["sleep"], Cmd: ["100000"], HostConfig: { NetworkMode: "host" } });
  await hand.start();
  const info = await hand.inspect();
  handmadeBefore = { id: info.Id, startedAt: info.State.StartedAt, labels: info.Config.Labels ?? {} };
});

afterAll(async () => {
  for (const name of [HANDMADE, ...created]) await docker?.getContainer(name).remove({ force: true }).catch(() => undefined);
  await parts?.audit.close();
  await podman?.stop();
  await gh?.stop();
});

describe("container lanes", () => {
  it("creates a persistent lane; the token is in neither Cmd, Env nor the container's files", async () => {
    const token = await registrationToken(gh);
    created.push("lanekeeper-lane-c1");
    const obs = await lanes.create({ spec: containerSpec("c1"), registrationToken: token });
    expect(obs.state).toBe(LaneState.LANE_STATE_RUNNING);
    await eventually(async () => (await runnerNamed(gh, "c1"))?.status === "online", "c1 online");
    const info = await docker.getContainer("lanekeeper-lane-c1").inspect();
    const config = JSON.stringify(info.Config);
    expect(config).not.toContain(token.toString());
    expect(info.Config.Labels?.[CONTAINER_LABELS.host]).toBe(HOST);
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
    await expect(docker.getContainer("lanekeeper-lane-c1").getArchive({ path: "/home/runner/.lk-token" })).rejects.toMatchObject({ statusCode: 404 });
    expect((await lanes.inspect("c1")).runnerId).toBe((await runnerNamed(gh, "c1"))?.id);
    expectAuditTriple(await auditRecords(parts.auditPath), "create", "c1", "succeeded");
  });

  it("refuses to stop while a job runs in the container", async () => {
    const job = await gh.control.createJob(SCOPE, { labels: ["lk-lane-c1"], durationMs: 60_000 });
    await eventually(async () => (await gh.control.getJob(job.id)).status === "in_progress", "job in progress");
    const ev = await eventually(async () => {
      const e = await rt.jobEvidence("c1");
      return e.jobRunning ? e : undefined;
    }, "Runner.Worker in the container");
    expect(ev.source).toBe("process-tree");
    await expectReject(lanes.stop({ laneId: "c1" }), RejectReason.JOB_RUNNING);
    expect(await running("lanekeeper-lane-c1")).toBe(true);
    expect((await gh.control.getJob(job.id)).status).toBe("in_progress");
    await lanes.stop({ laneId: "c1", force: true, forcedBy: "test" });
    expect(await running("lanekeeper-lane-c1")).toBe(false);
    await lanes.start({ laneId: "c1" });
    expect(await running("lanekeeper-lane-c1")).toBe(true);
  });

  it("restarts the container after the runner is killed with SIGKILL", async () => {
    const pid = await eventually(() => listenerPid("c1"), "listener in container");
    process.kill(pid, "SIGKILL");
    // Podman serializes engine operations across clients: another suite's `podman stop -t 30` can hold it for
    // up to 30 s, so these waits allow for podman's own stop timeout on top of the restart itself.
    await eventually(async () => !(await running("lanekeeper-lane-c1")), "container exited", PODMAN_BUSY_MS);
    await eventually(
      async () => {
        await lanes.superviseOnce();
        return running("lanekeeper-lane-c1");
      },
      "container restarted",
      PODMAN_BUSY_MS,
    );
    expect((await lanes.inspect("c1")).restartsInWindow).toBeGreaterThanOrEqual(1);
    expectAuditTriple(await auditRecords(parts.auditPath), "health-restart", "c1", "succeeded");
  });

  it("runs an ephemeral lane on a JIT config, goes idle after its job, and is re-armed", async () => {
    created.push("lanekeeper-lane-e1");
    const spec = containerSpec("e1", { mode: LaneMode.LANE_MODE_EPHEMERAL, labels: identityLabels({ laneId: "e1", hostId: HOST, pool: POOL }) });
    const jit = await jitConfig("e1");
    await lanes.create({ spec, jitConfig: jit });
    const info = await docker.getContainer("lanekeeper-lane-e1").inspect();
    expect(JSON.stringify(info.Config)).not.toContain(jit.toString());
    const job = await gh.control.createJob(SCOPE, { labels: ["lk-lane-e1"], durationMs: 200 });
    await eventually(async () => (await gh.control.getJob(job.id)).status === "completed", "ephemeral job done");
    await eventually(async () => !(await running("lanekeeper-lane-e1")), "ephemeral runner exited");
    await lanes.superviseOnce();
    expect((await lanes.inspect("e1")).state).toBe(LaneState.LANE_STATE_IDLE_UNARMED);
    await lanes.superviseOnce();
    expect(await running("lanekeeper-lane-e1")).toBe(false);
    await lanes.arm({ laneId: "e1", jitConfig: await jitConfig("e1") });
    await eventually(async () => (await runnerNamed(gh, "e1"))?.status === "online", "re-armed runner online");
    await lanes.drain({ laneId: "e1" });
    expect((await lanes.inspect("e1")).draining).toBe(true);
  });

  it("removes a lane: deregisters inside the container, then deletes it", async () => {
    const res = await lanes.remove({ laneId: "c1", removeToken: await removeToken(gh) });
    expect(res.deregistration).toBe("removed");
    expect(await runnerNamed(gh, "c1")).toBeUndefined();
    await expect(docker.getContainer("lanekeeper-lane-c1").inspect()).rejects.toMatchObject({ statusCode: 404 });
    expectAuditTriple(await auditRecords(parts.auditPath), "remove", "c1", "succeeded");
  });
});

describe("container ownership guards (security cases 9, 11, 12)", () => {
  it("refuses an image that is not allowlisted by digest", async () => {
    const other = `localhost/lanekeeper/other@sha256:${"b".repeat(64)}`;
    await expectReject(lanes.create({ spec: containerSpec("x0", { image: other }), registrationToken: await registrationToken(gh) }), RejectReason.NOT_ALLOWED_IMAGE);
    await expectReject(lanes.create({ spec: containerSpec("x0", { image: image.reference }), registrationToken: await registrationToken(gh) }), RejectReason.INVALID_NAME);
  });

  it("refuses containers under a lane's name without labels, with another host's labels, or with copied labels", async () => {
    created.push("lanekeeper-lane-x1", "lanekeeper-lane-x2", "lanekeeper-lane-x3");
    await (await docker.createContainer({ name: "lanekeeper-lane-x1", Image: image.reference, Entrypoint: ["sleep"], Cmd: ["1000"] })).start();
    await docker.createContainer({
      name: "lanekeeper-lane-x2",
      Image: image.reference,
      Entrypoint: ["sleep"],
      Cmd: ["1000"],
      Labels: { [CONTAINER_LABELS.lane]: "x2", [CONTAINER_LABELS.host]: "build02", [CONTAINER_LABELS.marker]: "x" },
    });
    const e1Labels = (await docker.getContainer("lanekeeper-lane-e1").inspect()).Config.Labels ?? {};
    await docker.createContainer({ name: "lanekeeper-lane-x3", Image: image.reference, Entrypoint: ["sleep"], Cmd: ["1000"], Labels: { ...e1Labels, [CONTAINER_LABELS.lane]: "x3" } });
    await expect(rt.checkOwnership("x1")).rejects.toMatchObject({ reason: RejectReason.NOT_OWNED });
    await expect(rt.checkOwnership("x2")).rejects.toMatchObject({ reason: RejectReason.FOREIGN_HOST });
    await expect(rt.checkOwnership("x3")).rejects.toMatchObject({ reason: RejectReason.BAD_MARKER });
    // Creating a lane over any of them is refused and leaves them as they were.
    for (const [id, reason] of [
      ["x1", RejectReason.NOT_OWNED],
      ["x2", RejectReason.FOREIGN_HOST],
      ["x3", RejectReason.BAD_MARKER],
    ] as const) {
      await expectReject(lanes.create({ spec: containerSpec(id), registrationToken: await registrationToken(gh) }), reason);
    }
    expect(await running("lanekeeper-lane-x1")).toBe(true);
    const listing = await rt.list();
    expect(listing.owned.map((o) => o.laneId).sort()).toEqual(["e1"]);
    expect(listing.unmanaged.filter((u) => u.name.startsWith("lanekeeper-lane-x")).map((u) => u.reason).sort()).toEqual(["BAD_MARKER", "FOREIGN_HOST", "NO_MARKER"]);
  });

  it("refuses to act on a lane whose container was swapped for one without markers", async () => {
    created.push("lanekeeper-lane-c9");
    await lanes.create({ spec: containerSpec("c9"), registrationToken: await registrationToken(gh) });
    await docker.getContainer("lanekeeper-lane-c9").remove({ force: true });
    const impostor = await docker.createContainer({ name: "lanekeeper-lane-c9", Image: image.reference, Entrypoint: ["sleep"], Cmd: ["1000"] });
    await impostor.start();
    await expectReject(lanes.stop({ laneId: "c9", force: true }), RejectReason.NOT_OWNED);
    await expectReject(lanes.remove({ laneId: "c9", force: true }), RejectReason.NOT_OWNED);
    await lanes.superviseOnce();
    expect((await impostor.inspect()).State.Running).toBe(true);
    expect((await impostor.inspect()).Id).toBe(impostor.id);
  });
});

describe("the hand-made container", () => {
  it("is reported as unmanaged and is untouched after every test", async () => {
    const u = (await rt.list()).unmanaged.find((x) => x.name === HANDMADE);
    expect(u).toMatchObject({ kind: "container", reason: "NO_MARKER", state: "running" });
    const info = await docker.getContainer(HANDMADE).inspect();
    expect(info.Id).toBe(handmadeBefore.id);
    expect(info.State.StartedAt).toBe(handmadeBefore.startedAt);
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels ?? {}).toEqual(handmadeBefore.labels);
  });
});
