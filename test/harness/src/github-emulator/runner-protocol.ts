/**
 * The private runner ↔ service protocol under `/_runner/`, exactly as `test/harness/docs/runner-protocol.md`
 * specifies it (registration with a registration token, sessions, long-poll messages, job started/completed,
 * removal with a remove token), plus the JIT config format `generate-jitconfig` returns.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { EmulatorCore } from "./core.js";
import { HttpError, plainError } from "./errors.js";
import { DEFAULT_POLL_WAIT_MS, MAX_POLL_WAIT_MS } from "./limits.js";
import type { ScopeRef } from "./registry.js";
import { Router, type Exchange, type Reply } from "./router.js";
import type { GroupRecord, RunnerConclusion, RunnerRecord, SessionRecord } from "./state.js";

/** The `.runner` file content (camel case, as the real runner writes it). */
export function runnerSettings(core: EmulatorCore, runner: RunnerRecord, group: GroupRecord): Record<string, unknown> {
  return {
    agentId: runner.id,
    agentName: runner.name,
    poolId: group.id,
    poolName: group.name,
    serverUrl: `${core.urls.web}/_runner`,
    gitHubUrl: core.webUrlOf(runner.scope),
    workFolder: runner.workFolder,
    ephemeral: runner.ephemeral,
  };
}

/** The `.credentials` file content. */
export function credentialsFile(core: EmulatorCore, runner: RunnerRecord, credential: string): Record<string, unknown> {
  return { scheme: "OAuth", data: { clientId: String(runner.id), authorizationUrl: `${core.urls.web}/_runner`, token: credential } };
}

/** `encoded_jit_config`: base64 of `{".runner": b64, ".credentials": b64, ".credentials_rsaparams": b64("{}")}`. */
export function encodeJitConfig(core: EmulatorCore, runner: RunnerRecord, credential: string, group: GroupRecord): string {
  const b64 = (v: unknown): string => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64");
  const files = {
    ".runner": b64(runnerSettings(core, runner, group)),
    ".credentials": b64(credentialsFile(core, runner, credential)),
    ".credentials_rsaparams": b64("{}"),
  };
  return Buffer.from(JSON.stringify(files)).toString("base64");
}

function authValue(headers: IncomingHttpHeaders, scheme: "RemoteAuth" | "Bearer"): string {
  const m = new RegExp(`^${scheme}\\s+(\\S+)\\s*$`, "i").exec(headers.authorization ?? "");
  if (!m) throw plainError(401, `Missing ${scheme} authorization.`);
  return m[1] as string;
}

async function objectBody(x: Exchange): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await x.json();
  } catch (err) {
    if (err instanceof HttpError && err.status === 400) throw plainError(400, "Body is not JSON.");
    throw err;
  }
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw plainError(400, "Body must be a JSON object.");
  return body as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string, fallback?: string): string {
  const v = body[key] ?? fallback;
  if (typeof v !== "string") throw plainError(400, `${key} must be a string`);
  return v;
}

function bool(body: Record<string, unknown>, key: string): boolean {
  const v = body[key] ?? false;
  if (typeof v !== "boolean") throw plainError(400, `${key} must be a boolean`);
  return v;
}

const CONCLUSIONS: readonly RunnerConclusion[] = ["success", "failure", "cancelled"];
const GONE = "The runner registration has been deleted from the server, please re-configure.";

/** Builds the `/_runner/` router (paths relative to `/_runner`). */
export function runnerProtocolRouter(core: EmulatorCore): Router {
  const r = new Router();
  const registry = core.registry;
  const broker = core.broker;

  /** The caller's runner from its Bearer credential: 401 bad credential, 404 deleted registration. */
  const runnerOfCaller = (x: Exchange): RunnerRecord => {
    const found = registry.runnerByCredential(authValue(x.headers, "Bearer"));
    if (!found.known) throw plainError(401, "Bad credential.");
    if (!found.runner) throw plainError(404, GONE);
    return found.runner;
  };
  /** A session of the caller's runner; 404 if it is gone. */
  const sessionOfCaller = (x: Exchange, id: unknown): SessionRecord => {
    const runner = runnerOfCaller(x);
    const session = typeof id === "string" ? core.state.sessions.get(id) : undefined;
    if (!session) throw plainError(404, "Session not found.");
    if (session.runnerId !== runner.id) throw plainError(401, "The session belongs to another runner.");
    return session;
  };
  const scopeOfUrl = (url: string): ScopeRef => {
    const scope = registry.scopeFromUrl(url);
    if (!scope) throw plainError(404, `No repository or organization is served at ${url}.`);
    return scope;
  };

  r.add("POST", "/register", async (x): Promise<Reply> => {
    const token = registry.validToken("registration", authValue(x.headers, "RemoteAuth"));
    if (!token) throw plainError(401, "The registration token is unknown or expired.");
    const body = await objectBody(x);
    const scope = scopeOfUrl(str(body, "url"));
    if (token.scope !== scope.key) throw plainError(401, "The registration token is not valid for this repository or organization.");
    const name = str(body, "name").trim();
    if (name === "") throw plainError(400, "name must not be empty");
    const labels = body.labels ?? [];
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string" && l.trim() !== "")) throw plainError(400, "labels must be non-empty strings");
    let group: GroupRecord | undefined = registry.defaultGroupOf(scope);
    const groupName = body.runnerGroup;
    if (scope.kind === "org" && typeof groupName === "string" && groupName !== "") {
      group = registry.groupByName(scope.org, groupName);
      if (!group) throw plainError(404, `Could not find any self-hosted runner group named "${groupName}".`);
    }
    const { runner, credential } = registry.register({
      scope,
      name,
      customLabels: labels as string[],
      defaultLabels: !bool(body, "noDefaultLabels"),
      groupId: group.id,
      ephemeral: bool(body, "ephemeral"),
      replace: bool(body, "replace"),
      workFolder: str(body, "workFolder", "_work"),
      os: "unknown",
    });
    return { status: 201, body: { ...runnerSettings(core, runner, group), credential } };
  });

  r.add("POST", "/remove", async (x): Promise<Reply> => {
    const token = registry.validToken("remove", authValue(x.headers, "RemoteAuth"));
    if (!token) throw plainError(401, "The remove token is unknown or expired.");
    const body = await objectBody(x);
    const scope = scopeOfUrl(str(body, "url"));
    if (token.scope !== scope.key) throw plainError(401, "The remove token is not valid for this repository or organization.");
    const runner = typeof body.agentId === "number" ? registry.runner(scope.key, body.agentId) : undefined;
    if (!runner) throw plainError(404, "Runner not found.");
    registry.assertNotBusy(runner);
    registry.deleteRunner(runner);
    return { status: 204 };
  });

  r.add("POST", "/sessions", async (x): Promise<Reply> => {
    const runner = runnerOfCaller(x);
    if (core.faults.refuseSessions()) throw plainError(503, "Service Unavailable");
    const body = await objectBody(x);
    if (body.agentId !== runner.id) throw plainError(401, "The credential does not belong to this agent.");
    const session = broker.openSession(runner, str(body, "version", "unknown"), str(body, "os", "Linux"));
    return { status: 201, body: { sessionId: session.id } };
  });

  r.add("GET", "/sessions/{sessionId}/message", async (x): Promise<Reply> => {
    const session = sessionOfCaller(x, x.params.sessionId);
    const raw = x.url.searchParams.get("wait_ms");
    const wait = raw !== null && /^\d+$/.test(raw) ? Math.min(Number(raw), MAX_POLL_WAIT_MS) : DEFAULT_POLL_WAIT_MS;
    const result = await broker.poll(session, wait, x.signal);
    if (result.kind === "gone") throw plainError(404, GONE);
    if (result.kind === "none") return { status: 204 };
    const job = result.job;
    return {
      status: 200,
      body: { type: "job", job: { id: job.id, name: job.name, labels: [...job.labels], durationMs: job.durationMs, conclusion: job.plannedConclusion } },
    };
  });

  r.add("POST", "/jobs/{jobId}/started", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    broker.jobStarted(Number(x.params.jobId), sessionOfCaller(x, body.sessionId));
    return { status: 204 };
  });

  r.add("POST", "/jobs/{jobId}/completed", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    const session = sessionOfCaller(x, body.sessionId);
    const conclusion = body.conclusion as RunnerConclusion;
    if (!CONCLUSIONS.includes(conclusion)) throw plainError(400, `conclusion must be one of ${CONCLUSIONS.join(", ")}`);
    broker.jobCompleted(Number(x.params.jobId), session, conclusion);
    return { status: 204 };
  });

  r.add("DELETE", "/sessions/{sessionId}", (x): Reply => {
    broker.closeSession(sessionOfCaller(x, x.params.sessionId), "deleted");
    return { status: 204 };
  });

  return r;
}
