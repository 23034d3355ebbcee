/**
 * Container lanes through the Docker Engine API (`dockerode`), which Docker and Podman both serve. One container
 * `lanekeeper-lane-<laneId>` per lane, from an image allowlisted by digest, with the ownership labels
 * `dev.lanekeeper.lane`, `dev.lanekeeper.host` and `dev.lanekeeper.marker` (a signature bound to the container
 * name), CPU and memory limits, restart policy `no` (the agent restarts with backoff and a cap).
 *
 * Secrets never enter the container's command or config: the agent copies a one-line file (mode 0600) into the
 * created or stopped container with the archive API, and the container's fixed start script reads it with a shell
 * builtin, deletes it, and passes it to the runner in `ACTIONS_RUNNER_INPUT_TOKEN` / `..._JITCONFIG`. The same
 * script runs `config.sh remove` when a remove-token file is present, so deregistration needs no `exec`.
 * The runner's state (`.runner`, credentials) lives in the container's own layer; the lane directory on the host
 * only holds `lane.json`. Removing a container therefore always deregisters first.
 */
import Docker from "dockerode";
import { RejectError, RejectReason, type UnmanagedRunner, containerNameForLane, validateImageRef } from "@lanekeeper/shared";
import { RunnerConfigError, RuntimeError } from "../errors.js";
import type { LaneDirectories } from "../lanes/lane-directory.js";
import type { MarkerSigner } from "../lanes/lane-marker.js";
import type {
  DeregisterOutcome,
  JobEvidence,
  LaneRuntime,
  RunnerSettings,
  RuntimeActivity,
  RuntimeLane,
  RuntimeListing,
  RuntimeStatus,
} from "./lane-runtime.js";
import {
  CONSOLE_TAIL_BYTES,
  CONTAINER_CONFIGURE_TIMEOUT_MS,
  CONTAINER_POLL_MS,
  CONTAINER_STOP_GRACE_S,
  ENGINE_CALL_TIMEOUT_MS,
  MAX_RUNNER_FILE_BYTES,
} from "../limits.js";
import { processTree, runnerWorkers } from "./proc-scan.js";
import { classifyRunnerFailure } from "../lanes/runner-cli.js";
import { parseRunnerSettings } from "../lanes/runner-settings.js";
import { firstTarFile, tarSingleFile } from "../lanes/tar-file.js";

/** Ownership label keys. */
export const CONTAINER_LABELS = Object.freeze({
  lane: "dev.lanekeeper.lane",
  host: "dev.lanekeeper.host",
  marker: "dev.lanekeeper.marker",
});

/** Printed by the start script before each `run.sh`, so a console tail covers one run. */
export const CONTAINER_START_MARK = "=== lanekeeper-lane: runner start ===";
/** Exit code of the start script when `config.sh` failed. */
export const CONFIGURE_FAILED_EXIT = 78;

const TOKEN_FILE = ".lk-token";
const JIT_FILE = ".lk-jit";
const REMOVE_FILE = ".lk-remove";

/**
 * The fixed start script (no secret, no value from a spec: those come from `LK_*` environment variables, always
 * double-quoted). Secret files are read with the `read` builtin and deleted before anything else runs.
 */
export const CONTAINER_START_SCRIPT = [
  'cd "$LK_HOME" || exit 70',
  "take() { IFS= read -r LK_SECRET < \"$1\"; rm -f \"$1\" 2>/dev/null || : > \"$1\"; }",
  `if [ -s ${REMOVE_FILE} ]; then take ${REMOVE_FILE}; ACTIONS_RUNNER_INPUT_TOKEN="$LK_SECRET"; unset LK_SECRET; export ACTIONS_RUNNER_INPUT_TOKEN; ./config.sh remove; exit $?; fi`,
  `if [ -s ${TOKEN_FILE} ]; then take ${TOKEN_FILE}; if [ ! -f .runner ]; then ACTIONS_RUNNER_INPUT_TOKEN="$LK_SECRET"; export ACTIONS_RUNNER_INPUT_TOKEN;` +
    ' if [ -n "$LK_GROUP" ]; then ./config.sh --unattended --url "$LK_URL" --name "$LK_NAME" --labels "$LK_LABELS" --no-default-labels --disableupdate --work _work --runnergroup "$LK_GROUP" || exit ' +
    `${CONFIGURE_FAILED_EXIT};` +
    ' else ./config.sh --unattended --url "$LK_URL" --name "$LK_NAME" --labels "$LK_LABELS" --no-default-labels --disableupdate --work _work || exit ' +
    `${CONFIGURE_FAILED_EXIT}; fi; unset ACTIONS_RUNNER_INPUT_TOKEN; fi; unset LK_SECRET; fi`,
  `if [ -s ${JIT_FILE} ]; then take ${JIT_FILE}; ACTIONS_RUNNER_INPUT_JITCONFIG="$LK_SECRET"; unset LK_SECRET; export ACTIONS_RUNNER_INPUT_JITCONFIG; fi`,
  `echo "${CONTAINER_START_MARK}"`,
  "exec ./run.sh",
].join("\n");

/** Options of {@link ContainerRuntime}. */
export interface ContainerRuntimeOptions {
  readonly hostId: string;
  readonly signer: MarkerSigner;
  readonly dirs: LaneDirectories;
  /** The engine's unix socket (`/run/podman/podman.sock`, `/var/run/docker.sock`). */
  readonly socketPath?: string;
  /** A ready client (tests); wins over `socketPath`. */
  readonly docker?: Docker;
  /** Exact image references (`name@sha256:…`) lanes may use. An empty list allows none. */
  readonly allowedImages: readonly string[];
  /** `NetworkMode` of lane containers. @default "host" */
  readonly networkMode?: string;
  /** The runner's directory inside the image. @default "/home/runner" */
  readonly runnerHome?: string;
  /**
   * Owner uid/gid of secret files copied into containers. By default the container's own user (the image's
   * `User`, looked up in the container's `/etc/passwd` when it is a name), so the file can stay 0600.
   */
  readonly secretOwner?: { readonly uid: number; readonly gid: number };
}

interface EngineError {
  statusCode?: number;
  message?: string;
}

function statusOf(err: unknown): number | undefined {
  return typeof err === "object" && err !== null ? (err as EngineError).statusCode : undefined;
}

/** Split the engine's multiplexed log stream (8-byte frame headers) into text. */
export function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const type = buf[off];
    const size = buf.readUInt32BE(off + 4);
    if ((type !== 0 && type !== 1 && type !== 2) || buf[off + 1] !== 0 || off + 8 + size > buf.length) {
      // Not framed (a TTY container): the rest is plain text.
      parts.push(buf.subarray(off));
      off = buf.length;
      break;
    }
    parts.push(buf.subarray(off + 8, off + 8 + size));
    off += 8 + size;
  }
  if (off < buf.length) parts.push(buf.subarray(off));
  return Buffer.concat(parts).toString("utf8");
}

function activityOfState(state: string | undefined): RuntimeActivity {
  switch (state) {
    case "running":
      return "running";
    case "created":
    case "configured":
    case "exited":
    case "stopped":
      return "stopped";
    case "restarting":
      return "starting";
    case "removing":
    case "stopping":
      return "stopping";
    case "dead":
      return "failed";
    default:
      return state === undefined ? "missing" : "stopped";
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The container backend. */
export class ContainerRuntime implements LaneRuntime {
  readonly backend = "container" as const;
  private readonly docker: Docker;
  private readonly home: string;

  constructor(private readonly opts: ContainerRuntimeOptions) {
    this.docker = opts.docker ?? new Docker({ socketPath: opts.socketPath ?? "/var/run/docker.sock", timeout: ENGINE_CALL_TIMEOUT_MS });
    this.home = opts.runnerHome ?? "/home/runner";
  }

  /** The engine client. */
  get engine(): Docker {
    return this.docker;
  }

  async engineName(): Promise<string> {
    const v = await this.docker.version();
    return (v.Components ?? []).some((c) => /podman/i.test(c.Name)) ? "podman" : "docker";
  }

  runtimeName(laneId: string): string {
    return containerNameForLane(laneId);
  }

  private async inspectByName(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new RuntimeError(`inspecting container ${name} failed`, { cause: err });
    }
  }

  private verifyLabels(name: string, laneId: string, labels: Readonly<Record<string, string>> | undefined): void {
    const lane = labels?.[CONTAINER_LABELS.lane];
    const host = labels?.[CONTAINER_LABELS.host];
    const marker = labels?.[CONTAINER_LABELS.marker];
    const details = { laneId, container: name };
    if (lane === undefined && host === undefined) {
      throw new RejectError(RejectReason.NOT_OWNED, `container ${name} has no lanekeeper labels; it is not managed and is left alone`, { details });
    }
    if (host !== this.opts.hostId) throw new RejectError(RejectReason.FOREIGN_HOST, `container ${name} carries the labels of host ${host ?? "(none)"}`, { details });
    if (lane !== laneId) throw new RejectError(RejectReason.BAD_MARKER, `container ${name} carries the labels of lane ${lane ?? "(none)"}`, { details });
    if (marker === undefined || !this.opts.signer.verifyRuntimeMarker(marker, laneId, "container", name)) {
      throw new RejectError(RejectReason.BAD_MARKER, `container ${name} has a marker label that does not verify with this agent's key`, { details });
    }
  }

  async checkOwnership(laneId: string): Promise<"owned" | "missing"> {
    const name = this.runtimeName(laneId);
    const info = await this.inspectByName(name);
    if (!info) return "missing";
    if (info.Name.replace(/^\//, "") !== name) throw new RejectError(RejectReason.NOT_OWNED, `the engine resolved ${name} to ${info.Name}`, { details: { laneId } });
    this.verifyLabels(name, laneId, info.Config.Labels);
    return "owned";
  }

  /**
   * Check ownership right before a mutation and return the container's id: the mutation then targets that id,
   * so a container swapped in under the same name afterwards is never touched.
   */
  private async assertOwned(laneId: string): Promise<{ id: string; info: Docker.ContainerInspectInfo }> {
    const name = this.runtimeName(laneId);
    const info = await this.inspectByName(name);
    if (!info) throw new RejectError(RejectReason.LANE_NOT_FOUND, `container ${name} does not exist`, { details: { laneId } });
    if (info.Name.replace(/^\//, "") !== name) throw new RejectError(RejectReason.NOT_OWNED, `the engine resolved ${name} to ${info.Name}`, { details: { laneId } });
    this.verifyLabels(name, laneId, info.Config.Labels);
    return { id: info.Id, info };
  }

  private assertImageAllowed(image: string, laneId: string): void {
    validateImageRef(image);
    if (!this.opts.allowedImages.includes(image)) {
      throw new RejectError(RejectReason.NOT_ALLOWED_IMAGE, `image ${image} is not in the agent's allowlist (control.images)`, { details: { laneId } });
    }
  }

  async create(lane: RuntimeLane): Promise<void> {
    const r = lane.record;
    const name = this.runtimeName(r.laneId);
    this.assertImageAllowed(r.image, r.laneId);
    if ((await this.checkOwnership(r.laneId)) === "owned") {
      throw new RejectError(RejectReason.LANE_EXISTS, `container ${name} exists already`, { details: { laneId: r.laneId } });
    }
    try {
      await this.docker.getImage(r.image).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw new RuntimeError(`inspecting image ${r.image} failed`, { cause: err });
      await this.pull(r.image);
    }
    const labels = {
      [CONTAINER_LABELS.lane]: r.laneId,
      [CONTAINER_LABELS.host]: this.opts.hostId,
      [CONTAINER_LABELS.marker]: this.opts.signer.runtimeMarker(r.laneId, "container", name),
    };
    try {
      await this.docker.createContainer({
        name,
        Image: r.image,
        Entrypoint: ["/bin/sh", "-c"],
        Cmd: [CONTAINER_START_SCRIPT],
        WorkingDir: this.home,
        Env: [
          `LK_HOME=${this.home}`,
          `LK_URL=${r.githubUrl}`,
          `LK_NAME=${r.laneId}`,
          `LK_LABELS=${r.labels.join(",")}`,
          `LK_GROUP=${r.runnerGroup}`,
          // The container is the isolation boundary; runner images commonly run as root.
          "RUNNER_ALLOW_RUNASROOT=1",
        ],
        Labels: labels,
        HostConfig: {
          NetworkMode: this.opts.networkMode ?? "host",
          RestartPolicy: { Name: "no" },
          SecurityOpt: ["no-new-privileges"],
          ...(r.cpuMillis > 0 ? { NanoCpus: r.cpuMillis * 1_000_000 } : {}),
          ...(r.memoryBytes > 0 ? { Memory: r.memoryBytes } : {}),
        },
      });
    } catch (err) {
      if (statusOf(err) === 409) {
        throw new RejectError(RejectReason.NOT_OWNED, `a container named ${name} appeared while the lane was being created`, { details: { laneId: r.laneId } });
      }
      throw new RuntimeError(`creating container ${name} failed`, { cause: err });
    }
  }

  private async pull(image: string): Promise<void> {
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
      });
    } catch (err) {
      throw new RuntimeError(`image ${image} is not present and cannot be pulled`, { cause: err });
    }
  }

  /** uid/gid of the container's user: numeric `User`, or a name resolved in the container's own /etc/passwd. */
  private async containerUser(id: string, user: string): Promise<{ uid: number; gid: number }> {
    if (this.opts.secretOwner) return this.opts.secretOwner;
    if (user === "" || user === "root" || user === "0") return { uid: 0, gid: 0 };
    const [name = "", group] = user.split(":");
    const num = /^\d+$/.test(name) ? Number.parseInt(name, 10) : undefined;
    const gnum = group !== undefined && /^\d+$/.test(group) ? Number.parseInt(group, 10) : undefined;
    if (num !== undefined) return { uid: num, gid: gnum ?? num };
    const passwd = (await this.readPath(id, "/etc/passwd"))?.toString("utf8") ?? "";
    for (const line of passwd.split("\n")) {
      const f = line.split(":");
      if (f[0] === name && f.length >= 4) {
        const uid = Number.parseInt(f[2] ?? "", 10);
        const gid = Number.parseInt(f[3] ?? "", 10);
        if (Number.isSafeInteger(uid) && Number.isSafeInteger(gid)) return { uid, gid: gnum ?? gid };
      }
    }
    throw new RuntimeError(`the container user ${JSON.stringify(user)} is not in the image's /etc/passwd; set a numeric USER in the image`);
  }

  private async putSecret(id: string, file: string, secret: Buffer): Promise<void> {
    const info = await this.docker.getContainer(id).inspect();
    const owner = await this.containerUser(id, info.Config.User ?? "");
    const tar = tarSingleFile(file, Buffer.concat([secret, Buffer.from("\n")]), { mode: 0o600, uid: owner.uid, gid: owner.gid });
    try {
      await this.docker.getContainer(id).putArchive(tar, { path: this.home });
    } finally {
      tar.fill(0);
    }
  }

  private async startId(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusOf(err) === 304) return;
      throw new RuntimeError(`starting container ${id.slice(0, 12)} failed`, { cause: err });
    }
  }

  private async stopId(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: CONTAINER_STOP_GRACE_S });
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return;
      throw new RuntimeError(`stopping container ${id.slice(0, 12)} failed`, { cause: err });
    }
  }

  private async readHomeFile(id: string, file: string): Promise<Buffer | undefined> {
    let archive: Buffer;
    try {
      const stream = await this.docker.getContainer(id).getArchive({ path: `${this.home}/${file}` });
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const c of stream as AsyncIterable<Buffer>) {
        chunks.push(c);
        total += c.length;
        if (total > MAX_RUNNER_FILE_BYTES + 4096) break;
      }
      archive = Buffer.concat(chunks);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new RuntimeError(`reading ${file} from container ${id.slice(0, 12)} failed`, { cause: err });
    }
    // Only a 404 says the file is absent. While the engine tears a container down after its process died it can
    // answer 200 with an empty or cut archive; reading that as "no .runner" would mark a healthy lane
    // NOT_CONFIGURED, so it is an error the caller retries on its next pass.
    const content = firstTarFile(archive, MAX_RUNNER_FILE_BYTES);
    if (!content) throw new RuntimeError(`container ${id.slice(0, 12)} answered without a complete ${file}; read it again later`);
    return content;
  }

  private async logsOf(id: string): Promise<string> {
    const buf = await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: 400, follow: false });
    const text = demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    return text.length > CONSOLE_TAIL_BYTES ? text.slice(text.length - CONSOLE_TAIL_BYTES) : text;
  }

  async configure(lane: RuntimeLane, registrationToken: Buffer): Promise<void> {
    const r = lane.record;
    const { id, info } = await this.assertOwned(r.laneId);
    if (info.State.Running) throw new RuntimeError(`container ${this.runtimeName(r.laneId)} is running; configure needs it stopped`);
    await this.putSecret(id, TOKEN_FILE, registrationToken);
    await this.startId(id);
    const deadline = Date.now() + CONTAINER_CONFIGURE_TIMEOUT_MS;
    for (;;) {
      // While the runner starts, an unreadable answer is just "not yet".
      if (await this.readHomeFile(id, ".runner").catch(() => undefined)) return;
      const st = (await this.docker.getContainer(id).inspect()).State;
      if (!st.Running) {
        if (await this.readHomeFile(id, ".runner")) return;
        const f = classifyRunnerFailure(await this.logsOf(id), r);
        throw new RunnerConfigError("RUNNER_CONFIGURE_FAILED", `registering lane ${r.laneId} failed: ${f.text}`, {
          details: { laneId: r.laneId, runnerCode: f.code, exitCode: st.ExitCode },
        });
      }
      if (Date.now() > deadline) {
        await this.stopId(id);
        throw new RuntimeError(`lane ${r.laneId} did not finish configuring within ${CONTAINER_CONFIGURE_TIMEOUT_MS} ms`);
      }
      await sleep(CONTAINER_POLL_MS);
    }
  }

  async armJit(lane: RuntimeLane, jitConfig: Buffer): Promise<void> {
    const { id, info } = await this.assertOwned(lane.record.laneId);
    if (info.State.Running) throw new RuntimeError(`container ${this.runtimeName(lane.record.laneId)} is running; arm needs it stopped`);
    await this.putSecret(id, JIT_FILE, jitConfig);
  }

  async clearSecrets(): Promise<void> {
    // The start script deletes secret files itself as it reads them.
  }

  async start(laneId: string): Promise<void> {
    const { id } = await this.assertOwned(laneId);
    await this.startId(id);
  }

  async stop(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const { id } = await this.assertOwned(laneId);
    if (guard) await guard();
    await this.stopId(id);
  }

  async restart(laneId: string, guard?: () => Promise<void>): Promise<void> {
    const { id } = await this.assertOwned(laneId);
    if (guard) await guard();
    try {
      await this.docker.getContainer(id).restart({ t: CONTAINER_STOP_GRACE_S });
    } catch (err) {
      throw new RuntimeError(`restarting container ${this.runtimeName(laneId)} failed`, { cause: err });
    }
  }

  async deregister(lane: RuntimeLane, removeToken: Buffer): Promise<DeregisterOutcome> {
    const r = lane.record;
    const { id, info } = await this.assertOwned(r.laneId);
    if (info.State.Running) throw new RuntimeError(`container ${this.runtimeName(r.laneId)} is running; deregister needs it stopped`);
    if (!(await this.readHomeFile(id, ".runner"))) return "not-configured";
    await this.putSecret(id, REMOVE_FILE, removeToken);
    await this.startId(id);
    const deadline = Date.now() + CONTAINER_CONFIGURE_TIMEOUT_MS;
    for (;;) {
      const st = (await this.docker.getContainer(id).inspect()).State;
      if (!st.Running) {
        if (st.ExitCode === 0 && !(await this.readHomeFile(id, ".runner"))) return "removed";
        const f = classifyRunnerFailure(await this.logsOf(id), r);
        throw new RunnerConfigError("RUNNER_REMOVE_FAILED", `deregistering lane ${r.laneId} failed: ${f.text}`, {
          details: { laneId: r.laneId, runnerCode: f.code, exitCode: st.ExitCode },
        });
      }
      if (Date.now() > deadline) {
        await this.stopId(id);
        throw new RuntimeError(`deregistering lane ${r.laneId} did not finish within ${CONTAINER_CONFIGURE_TIMEOUT_MS} ms`);
      }
      await sleep(CONTAINER_POLL_MS);
    }
  }

  async remove(laneId: string): Promise<void> {
    if ((await this.checkOwnership(laneId)) === "missing") return;
    const { id } = await this.assertOwned(laneId);
    await this.stopId(id);
    try {
      await this.docker.getContainer(id).remove({ v: true, force: true });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw new RuntimeError(`removing container ${this.runtimeName(laneId)} failed`, { cause: err });
    }
  }

  async inspect(laneId: string): Promise<RuntimeStatus> {
    const name = this.runtimeName(laneId);
    const info = await this.inspectByName(name);
    if (!info) return { laneId, runtimeName: name, activity: "missing" };
    const started = Date.parse(info.State.StartedAt);
    return {
      laneId,
      runtimeName: name,
      activity: activityOfState(info.State.Status),
      ...(info.State.Running ? {} : { exitCode: info.State.ExitCode }),
      ...(Number.isFinite(started) && started > 0 ? { startedAtMs: started } : {}),
    };
  }

  async inspectMany(laneIds: readonly string[]): Promise<Map<string, RuntimeStatus>> {
    const out = new Map<string, RuntimeStatus>();
    if (laneIds.length === 0) return out;
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${CONTAINER_LABELS.host}=${this.opts.hostId}`] } });
    const byName = new Map(list.map((c) => [(c.Names[0] ?? "").replace(/^\//, ""), c]));
    for (const laneId of laneIds) {
      const name = this.runtimeName(laneId);
      const c = byName.get(name);
      const m = c ? /Exited \((-?\d+)\)/.exec(c.Status) : null;
      out.set(laneId, {
        laneId,
        runtimeName: name,
        activity: c ? activityOfState(c.State) : "missing",
        ...(m?.[1] !== undefined ? { exitCode: Number.parseInt(m[1], 10) } : {}),
      });
    }
    return out;
  }

  async list(): Promise<RuntimeListing> {
    const all = await this.docker.listContainers({ all: true });
    const owned: { laneId: string; runtimeName: string }[] = [];
    const unmanaged: UnmanagedRunner[] = [];
    const candidates: Docker.ContainerInfo[] = [];
    for (const c of all) {
      const name = (c.Names[0] ?? "").replace(/^\//, "");
      const ours = /^lanekeeper-lane-([a-z0-9][a-z0-9-]{0,62})$/.exec(name);
      const hasLabels = c.Labels[CONTAINER_LABELS.lane] !== undefined || c.Labels[CONTAINER_LABELS.host] !== undefined;
      if (ours?.[1] !== undefined || hasLabels) {
        try {
          if (!ours?.[1]) throw new RejectError(RejectReason.BAD_MARKER, `container ${name} carries lanekeeper labels under a foreign name`);
          this.verifyLabels(name, ours[1], c.Labels);
          owned.push({ laneId: ours[1], runtimeName: name });
        } catch (err) {
          const reason = err instanceof RejectError ? (err.reason === RejectReason.NOT_OWNED ? "NO_MARKER" : err.reason) : "UNREADABLE";
          unmanaged.push({ kind: "container", name, runnerName: "", githubUrl: "", reason, state: c.State });
        }
        continue;
      }
      if (/runner/i.test(`${c.Image} ${c.Command}`)) {
        unmanaged.push({ kind: "container", name, runnerName: "", githubUrl: "", reason: "NO_MARKER", state: c.State });
      } else {
        candidates.push(c);
      }
    }
    // Containers that do not look like runners by image or command: a .runner file in the usual places says so.
    for (const c of candidates.slice(0, 64)) {
      for (const dir of [this.home, "/actions-runner", "/runner"]) {
        const buf = await this.readPath(c.Id, `${dir}/.runner`);
        if (buf) {
          const s = parseRunnerSettings(buf.toString("utf8"));
          unmanaged.push({
            kind: "container",
            name: (c.Names[0] ?? "").replace(/^\//, ""),
            runnerName: s?.agentName ?? "",
            githubUrl: s?.gitHubUrl ?? "",
            reason: "NO_MARKER",
            state: c.State,
          });
          break;
        }
      }
    }
    return { owned, unmanaged };
  }

  private async readPath(id: string, path: string): Promise<Buffer | undefined> {
    try {
      const stream = await this.docker.getContainer(id).getArchive({ path });
      const chunks: Buffer[] = [];
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      return firstTarFile(Buffer.concat(chunks), MAX_RUNNER_FILE_BYTES);
    } catch {
      return undefined;
    }
  }

  async jobEvidence(laneId: string): Promise<JobEvidence> {
    const info = await this.inspectByName(this.runtimeName(laneId));
    if (!info?.State.Running) return { jobRunning: false, workerPids: [], source: "none" };
    const pid = info.State.Pid;
    if (!pid || pid <= 0) throw new RuntimeError(`container ${this.runtimeName(laneId)} is running but its pid is unknown: job evidence unavailable`);
    // The engine runs containers in the host's pid namespace view: the container's init and its descendants.
    const workers = await runnerWorkers(await processTree(pid));
    return { jobRunning: workers.length > 0, workerPids: workers, source: "process-tree" };
  }

  async runnerSettings(lane: RuntimeLane): Promise<RunnerSettings | undefined> {
    const info = await this.inspectByName(this.runtimeName(lane.record.laneId));
    if (!info) return undefined;
    const buf = await this.readHomeFile(info.Id, ".runner");
    return buf ? parseRunnerSettings(buf.toString("utf8")) : undefined;
  }

  async consoleTail(lane: RuntimeLane): Promise<string> {
    const info = await this.inspectByName(this.runtimeName(lane.record.laneId));
    if (!info) return "";
    const text = await this.logsOf(info.Id);
    const at = text.lastIndexOf(CONTAINER_START_MARK);
    return at >= 0 ? text.slice(at + CONTAINER_START_MARK.length) : text;
  }
}
