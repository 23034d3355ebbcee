/**
 * The lane runtime of a simulated host: the agent's in-memory runtime ({@link MemoryRuntime}: units, runner
 * processes, job evidence, ownership) whose runners talk to the GitHub emulator over its runner protocol
 * (`/_runner/`), as the runner emulator's `config.sh` and `run.sh` do, but without a process per runner:
 *
 * - `configure` registers with the registration token the intent carried (`POST /_runner/register`), so the
 *   registration, its labels and its runner id are GitHub's (the emulator's), not invented;
 * - `armJit` takes the runner id and credential out of the JIT config GitHub minted;
 * - `start` opens a session (`POST /_runner/sessions`): GitHub shows the runner online; `stop`, `restart`,
 *   `remove` and `deregister` close it or remove the registration (`POST /_runner/remove`).
 *
 * A session stays online as long as the emulator's `offlineAfterMs` allows without a poll: the simulation runs the
 * emulator with a long one instead of keeping 20,000 long polls open. No job ever runs on a simulated runner.
 */
import type { Clock } from "@lanekeeper/shared";
import {
  MemoryRuntime,
  type BackendName,
  type DeregisterOutcome,
  type JobEvidence,
  type LaneRuntime,
  type RunnerSettings,
  type RuntimeLane,
  type RuntimeListing,
  type RuntimeStatus,
} from "@lanekeeper/agent";

/** The runner protocol calls a simulated runner makes; one per worker process (it keeps HTTP connections alive). */
export interface SimRunnerProtocol {
  register(githubUrl: string, token: string, body: { name: string; labels: readonly string[]; runnerGroup: string }): Promise<{ agentId: number; credential: string }>;
  openSession(credential: string, agentId: number): Promise<string>;
  closeSession(credential: string, sessionId: string): Promise<void>;
  remove(githubUrl: string, token: string, agentId: number): Promise<void>;
}

/** The emulator's runner protocol over HTTP (`<webUrl>/_runner/...`). */
export class HttpRunnerProtocol implements SimRunnerProtocol {
  /** Runner protocol requests sent (for the simulation's figures). */
  requests = 0;

  constructor(private readonly webUrl: string) {}

  private async call(path: string, auth: string, method: string, body?: unknown): Promise<Response> {
    this.requests++;
    return fetch(`${this.webUrl}/_runner${path}`, {
      method,
      headers: { authorization: auth, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  private static async expect(res: Response, status: number, what: string): Promise<Response> {
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    return res;
  }

  async register(githubUrl: string, token: string, b: { name: string; labels: readonly string[]; runnerGroup: string }): Promise<{ agentId: number; credential: string }> {
    const res = await this.call("/register", `RemoteAuth ${token}`, "POST", {
      url: githubUrl,
      name: b.name,
      labels: b.labels,
      noDefaultLabels: true,
      ephemeral: false,
      workFolder: "_work",
      ...(b.runnerGroup === "" ? {} : { runnerGroup: b.runnerGroup }),
    });
    const body = (await (await HttpRunnerProtocol.expect(res, 201, `register ${b.name}`)).json()) as { agentId: number; credential: string };
    return { agentId: body.agentId, credential: body.credential };
  }

  async openSession(credential: string, agentId: number): Promise<string> {
    const res = await this.call("/sessions", `Bearer ${credential}`, "POST", { agentId, version: "2.336.0", os: "Linux" });
    return ((await (await HttpRunnerProtocol.expect(res, 201, `session of runner ${agentId}`)).json()) as { sessionId: string }).sessionId;
  }

  async closeSession(credential: string, sessionId: string): Promise<void> {
    const res = await this.call(`/sessions/${sessionId}`, `Bearer ${credential}`, "DELETE");
    // 404: the session expired or the registration is gone; either way it is closed.
    if (res.status !== 204 && res.status !== 404) await HttpRunnerProtocol.expect(res, 204, `closing session ${sessionId}`);
  }

  async remove(githubUrl: string, token: string, agentId: number): Promise<void> {
    const res = await this.call("/remove", `RemoteAuth ${token}`, "POST", { url: githubUrl, agentId });
    await HttpRunnerProtocol.expect(res, 204, `remove runner ${agentId}`);
  }
}

interface SimRunner {
  agentId: number;
  credential: string;
  githubUrl: string;
  ephemeral: boolean;
  sessionId: string | undefined;
}

/** What a JIT config (`encoded_jit_config`) holds that a runner needs: its id and its credential. */
export function decodeJitConfig(jitConfig: Buffer): { agentId: number; credential: string; gitHubUrl: string } {
  const files = JSON.parse(Buffer.from(jitConfig.toString("utf8"), "base64").toString("utf8")) as Record<string, string>;
  const file = (name: string): Record<string, unknown> => JSON.parse(Buffer.from(files[name] ?? "", "base64").toString("utf8")) as Record<string, unknown>;
  const runner = file(".runner");
  const creds = file(".credentials") as { data?: { token?: string } };
  return { agentId: Number(runner.agentId), credential: String(creds.data?.token ?? ""), gitHubUrl: typeof runner.gitHubUrl === "string" ? runner.gitHubUrl : "" };
}

/** A {@link LaneRuntime} whose runners register and go online on the GitHub emulator (see the module comment). */
export class SimRunnerRuntime implements LaneRuntime {
  readonly backend: BackendName;
  private readonly inner: MemoryRuntime;
  private readonly runners = new Map<string, SimRunner>();

  constructor(private readonly protocol: SimRunnerProtocol, opts: { backend?: BackendName; clock?: Clock } = {}) {
    this.backend = opts.backend ?? "systemd";
    this.inner = new MemoryRuntime({ backend: this.backend, ...(opts.clock ? { clock: opts.clock } : {}) });
  }

  /** Lanes whose runner has a session open (online on GitHub). */
  onlineCount(): number {
    let n = 0;
    for (const r of this.runners.values()) if (r.sessionId !== undefined) n++;
    return n;
  }

  /** Lanes with a unit. */
  laneCount(): number {
    return this.inner.laneIds().length;
  }

  runtimeName(laneId: string): string {
    return this.inner.runtimeName(laneId);
  }

  checkOwnership(laneId: string): Promise<"owned" | "missing"> {
    return this.inner.checkOwnership(laneId);
  }

  create(lane: RuntimeLane): Promise<void> {
    return this.inner.create(lane);
  }

  async configure(lane: RuntimeLane, registrationToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<void> {
    // config.sh: the unit must exist (ownership re-check) before the registration is made.
    await this.inner.configure(lane, registrationToken, onChild);
    const r = lane.record;
    const { agentId, credential } = await this.protocol.register(r.githubUrl, registrationToken.toString("utf8"), {
      name: r.laneId,
      labels: r.labels,
      runnerGroup: r.runnerGroup,
    });
    this.runners.set(r.laneId, { agentId, credential, githubUrl: r.githubUrl, ephemeral: false, sessionId: undefined });
  }

  async armJit(lane: RuntimeLane, jitConfig: Buffer): Promise<void> {
    await this.inner.armJit(lane, jitConfig);
    const jit = decodeJitConfig(jitConfig);
    this.runners.set(lane.record.laneId, { agentId: jit.agentId, credential: jit.credential, githubUrl: lane.record.githubUrl, ephemeral: true, sessionId: undefined });
  }

  clearSecrets(laneId: string): Promise<void> {
    return this.inner.clearSecrets(laneId);
  }

  async start(laneId: string): Promise<void> {
    await this.inner.start(laneId);
    const r = this.runners.get(laneId);
    if (r !== undefined && r.sessionId === undefined && (await this.inner.inspect(laneId)).activity === "running") {
      r.sessionId = await this.protocol.openSession(r.credential, r.agentId);
    }
  }

  private async endSession(laneId: string): Promise<void> {
    const r = this.runners.get(laneId);
    if (r?.sessionId === undefined) return;
    const id = r.sessionId;
    r.sessionId = undefined;
    await this.protocol.closeSession(r.credential, id);
  }

  async stop(laneId: string, guard?: () => Promise<void>): Promise<void> {
    await this.inner.stop(laneId, guard);
    await this.endSession(laneId);
  }

  async restart(laneId: string, guard?: () => Promise<void>): Promise<void> {
    await this.inner.restart(laneId, guard);
    await this.endSession(laneId);
    const r = this.runners.get(laneId);
    if (r !== undefined) r.sessionId = await this.protocol.openSession(r.credential, r.agentId);
  }

  async deregister(lane: RuntimeLane, removeToken: Buffer, onChild?: (pid: number) => Promise<void>): Promise<DeregisterOutcome> {
    const laneId = lane.record.laneId;
    const outcome = await this.inner.deregister(lane, removeToken, onChild);
    const r = this.runners.get(laneId);
    if (outcome === "removed" && r !== undefined) {
      await this.endSession(laneId);
      await this.protocol.remove(r.githubUrl, removeToken.toString("utf8"), r.agentId);
      this.runners.delete(laneId);
    }
    return outcome;
  }

  async remove(laneId: string): Promise<void> {
    await this.inner.remove(laneId);
    await this.endSession(laneId);
    this.runners.delete(laneId);
  }

  inspect(laneId: string): Promise<RuntimeStatus> {
    return this.inner.inspect(laneId);
  }

  inspectMany(laneIds: readonly string[]): Promise<Map<string, RuntimeStatus>> {
    return this.inner.inspectMany(laneIds);
  }

  list(): Promise<RuntimeListing> {
    return this.inner.list();
  }

  jobEvidence(laneId: string): Promise<JobEvidence> {
    return this.inner.jobEvidence(laneId);
  }

  async runnerSettings(lane: RuntimeLane): Promise<RunnerSettings | undefined> {
    const inner = await this.inner.runnerSettings(lane);
    const r = this.runners.get(lane.record.laneId);
    // The registration's id is GitHub's (the emulator's), not the in-memory model's own counter.
    return inner === undefined || r === undefined ? inner : { ...inner, agentId: r.agentId };
  }

  consoleTail(lane: RuntimeLane): Promise<string> {
    return this.inner.consoleTail(lane);
  }

  engineName(): Promise<string> {
    return this.inner.engineName();
  }
}
