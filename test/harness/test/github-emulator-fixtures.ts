/**
 * Shared pieces of the GitHub emulator tests: an Octokit whose every response (and error response) is
 * checked against GitHub's OpenAPI description, a plain-fetch runner-protocol client, and a poll-until helper.
 */
import { Octokit } from "@octokit/rest";
import { OpenApiValidator, type GitHubEmulator } from "../src/index.js";

/** One OpenAPI check that failed. */
export interface Violation {
  request: string;
  status: number;
  errors: string[];
}

/** Records conformance checks: failures and which `operationId status` pairs were exercised. */
export class ConformanceLog {
  readonly violations: Violation[] = [];
  readonly seen = new Set<string>();

  constructor(
    readonly validator: OpenApiValidator,
    private readonly apiUrl: string,
  ) {}

  /** Checks one REST response; `url` is absolute. */
  check(method: string, url: string, status: number, body: unknown): void {
    const u = new URL(url);
    const path = u.pathname.slice(new URL(this.apiUrl).pathname.length);
    const result = this.validator.checkResponse(method, path, status, body === "" ? undefined : body);
    this.seen.add(`${result.operationId} ${status}`);
    if (result.errors.length > 0) this.violations.push({ request: `${method} ${path}`, status, errors: result.errors });
  }
}

/** An Octokit for `emu` that checks every response against the OpenAPI description into `log`. */
export function checkedOctokit(emu: GitHubEmulator, log: ConformanceLog, token = emu.token): Octokit {
  const quiet = (): void => undefined;
  const octokit = new Octokit({ baseUrl: emu.apiUrl, auth: token, log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
  octokit.hook.wrap("request", async (request, options) => {
    try {
      const res = await request(options);
      log.check(options.method, res.url, res.status, res.data);
      return res;
    } catch (err) {
      const e = err as { status?: number; response?: { url: string; status: number; data: unknown } };
      if (e.response) log.check(options.method, e.response.url, e.response.status, e.response.data);
      throw err;
    }
  });
  return octokit;
}

/** A REST request by plain fetch, checked into `log`; returns status, headers and body. */
export async function checkedFetch(
  log: ConformanceLog,
  method: string,
  url: string,
  init: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(url, {
    method,
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  const body: unknown = text === "" ? undefined : JSON.parse(text);
  log.check(method, url, res.status, body);
  return { status: res.status, headers: res.headers, body };
}

/** The status of a rejected Octokit call (fails the test if it resolved). */
export async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { status: number }).status;
  }
  throw new Error("expected the request to fail");
}

/** The rejected Octokit call's response body. */
export async function errorOf(p: Promise<unknown>): Promise<{ status: number; data: unknown; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status: number; response?: { data: unknown; headers: Record<string, string> } };
    return { status: e.status, data: e.response?.data, headers: e.response?.headers ?? {} };
  }
  throw new Error("expected the request to fail");
}

/** Polls `fn` until it returns a truthy value (fails after `timeoutMs`). */
export async function eventually<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Plain-fetch client of the `/_runner/` protocol for one registration. */
export class ProtocolRunner {
  sessionId = "";

  constructor(
    readonly base: string,
    readonly agentId: number,
    readonly credential: string,
  ) {}

  /** Registers a runner with a registration token (throws unless 201). */
  static async register(
    base: string,
    regToken: string,
    body: { url: string; name: string; labels?: string[]; noDefaultLabels?: boolean; runnerGroup?: string; ephemeral?: boolean; replace?: boolean },
  ): Promise<ProtocolRunner> {
    const res = await rawRegister(base, regToken, { labels: [], ephemeral: false, replace: false, workFolder: "_work", ...body });
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    const b = res.body as { agentId: number; credential: string };
    return new ProtocolRunner(base, b.agentId, b.credential);
  }

  /** A request with this runner's Bearer credential. */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.base}/_runner${path}`, {
      method,
      headers: { authorization: `Bearer ${this.credential}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
  }

  /** Opens a session; returns the status (201 on success, sessionId kept). */
  async connect(): Promise<number> {
    const res = await this.call("POST", "/sessions", { agentId: this.agentId, version: "2.336.0", os: "Linux" });
    if (res.status === 201) this.sessionId = (res.body as { sessionId: string }).sessionId;
    return res.status;
  }

  /** One long poll. */
  poll(waitMs = 2000): Promise<{ status: number; body: unknown }> {
    return this.call("GET", `/sessions/${this.sessionId}/message?wait_ms=${waitMs}`);
  }

  /** Polls until a job arrives (or fails after `timeoutMs`); returns the job message's job. */
  async nextJob(timeoutMs = 10_000): Promise<{ id: number; name: string; labels: string[]; durationMs: number; conclusion: string }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const res = await this.poll(500);
      if (res.status === 200) return (res.body as { job: { id: number; name: string; labels: string[]; durationMs: number; conclusion: string } }).job;
      if (res.status !== 204) throw new Error(`poll: ${res.status} ${JSON.stringify(res.body)}`);
    }
    throw new Error("no job arrived");
  }

  started(jobId: number): Promise<{ status: number; body: unknown }> {
    return this.call("POST", `/jobs/${jobId}/started`, { sessionId: this.sessionId });
  }

  completed(jobId: number, conclusion: string): Promise<{ status: number; body: unknown }> {
    return this.call("POST", `/jobs/${jobId}/completed`, { sessionId: this.sessionId, conclusion });
  }

  disconnect(): Promise<{ status: number; body: unknown }> {
    return this.call("DELETE", `/sessions/${this.sessionId}`);
  }
}

/** `POST /_runner/register` with any body. */
export async function rawRegister(base: string, regToken: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}/_runner/register`, {
    method: "POST",
    headers: { authorization: `RemoteAuth ${regToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

/** `POST /_runner/remove`. */
export async function rawRemove(base: string, removeToken: string, url: string, agentId: number): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}/_runner/remove`, {
    method: "POST",
    headers: { authorization: `RemoteAuth ${removeToken}`, "content-type": "application/json" },
    body: JSON.stringify({ url, agentId }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}
