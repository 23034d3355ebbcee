/**
 * A typed client of the control API (`/_emulator/`), handed out as `emulator.control` and usable on its own
 * against an `lk-github-emulator` process: `new EmulatorControl("http://127.0.0.1:PORT")`.
 */
import type {
  CreateJobRequest,
  EmulatorStats,
  Faults,
  JobStatus,
  JobView,
  RealismOptions,
  ResolvedRealism,
  RunnerView,
  TraceJobSpec,
  TraceView,
  WebhookDelivery,
} from "./control-types.js";
import { GitHubEmulatorError } from "./errors.js";
import type { TokenAccess } from "./options.js";

/** Client of `/_emulator/`. Every method throws `GitHubEmulatorError` `CONTROL_REQUEST_FAILED` on a non-2xx. */
export class EmulatorControl {
  /** @param baseUrl - the emulator's base URL (no `/api/v3`) */
  constructor(readonly baseUrl: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const res = await fetch(`${this.baseUrl}/_emulator${path}`, init);
    const text = await res.text();
    if (!res.ok) {
      throw new GitHubEmulatorError("CONTROL_REQUEST_FAILED", `${method} /_emulator${path}: ${res.status} ${text}`);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Queues a job in `owner/name`; returns its id and run id. */
  createJob(repo: string, job: CreateJobRequest): Promise<{ id: number; runId: number }> {
    return this.call("POST", `/repos/${repo}/jobs`, job);
  }

  /** One job. */
  getJob(id: number): Promise<JobView> {
    return this.call("GET", `/jobs/${id}`);
  }

  /**
   * Waits server-side until the job reaches `status` (or a later one) or `timeoutMs` passes, and returns
   * the job either way; check `status` on the result.
   */
  waitForJob(id: number, status: JobStatus, timeoutMs = 10_000): Promise<JobView> {
    return this.call("GET", `/jobs/${id}?wait_status=${status}&wait_ms=${timeoutMs}`);
  }

  /**
   * Defines (or replaces) a workflow file of `owner/repo` for `workflow_dispatch`: its job's `runs-on` (entries may
   * be `${{ inputs.<name> }}`), how long the job runs and how it ends. Answers the workflow's numeric id.
   */
  async defineWorkflow(repo: string, file: string, def: { runsOn: string[]; durationMs?: number; conclusion?: "success" | "failure" | "cancelled"; name?: string }): Promise<number> {
    const body = await this.call<{ id: number }>("PUT", `/repos/${repo}/workflows/${encodeURIComponent(file)}`, def);
    return body.id;
  }

  /** All jobs (optionally of one status), oldest first. */
  async listJobs(status?: JobStatus): Promise<JobView[]> {
    const body = await this.call<{ jobs: JobView[] }>("GET", `/jobs${status ? `?status=${status}` : ""}`);
    return body.jobs;
  }

  /** Cancels a job no runner has taken yet (409 otherwise). */
  cancelJob(id: number): Promise<JobView> {
    return this.call("POST", `/jobs/${id}/cancel`);
  }

  /** Every runner registration, with server-truth status and busy. */
  async listRunners(): Promise<RunnerView[]> {
    const body = await this.call<{ runners: RunnerView[] }>("GET", "/runners");
    return body.runners;
  }

  /** Merges faults into the ones in force; returns the faults now in force. */
  setFaults(faults: Faults): Promise<Faults> {
    return this.call("POST", "/faults", faults);
  }

  /** The faults in force. */
  getFaults(): Promise<Faults> {
    return this.call("GET", "/faults");
  }

  /**
   * Publish a runner version (its archive is the runner emulator reporting that version; `broken`: one whose
   * listener exits 1 at once); returns the newest.
   */
  async publishRunnerVersion(
    version: string,
    opts: { broken?: boolean } = {},
  ): Promise<{ latest: string; releases: { version: string; files: { filename: string; sha256: string; size: number }[] }[] }> {
    return this.call("POST", "/runner-releases", { version, ...opts });
  }

  /** Published runner versions, newest first, with their archives' checksums. */
  async runnerReleases(): Promise<{ latest: string; releases: { version: string; files: { filename: string; sha256: string; size: number }[] }[] }> {
    return this.call("GET", "/runner-releases");
  }

  /** Download faults: a wrong advertised checksum; the next `count` archive responses cut after `afterBytes`. */
  async setRunnerReleaseFaults(f: { wrongChecksum?: boolean; truncate?: { count: number; afterBytes: number } }): Promise<void> {
    await this.call("POST", "/runner-releases/faults", f);
  }

  /** Removes every fault and gives every token a fresh rate-limit window. */
  async clearFaults(): Promise<void> {
    await this.call("DELETE", "/faults");
  }

  /** The realism in force (`busy`/`online` lags, webhook drops and delays). */
  getRealism(): Promise<ResolvedRealism> {
    return this.call("GET", "/realism");
  }

  /** Replaces the realism in force; fields not given are fault-free (0). Returns what is now in force. */
  setRealism(realism: RealismOptions): Promise<ResolvedRealism> {
    return this.call("PUT", "/realism", realism);
  }

  /** Starts a job trace: each job is queued `atMs` after now. Returns the trace id. */
  async startTrace(jobs: TraceJobSpec[]): Promise<{ id: number; jobs: number; startedAt: string }> {
    return this.call("POST", "/traces", { jobs });
  }

  /** A trace's per-job report (created/started/completed times, runner, queue wait) and counts. */
  getTrace(id: number): Promise<TraceView> {
    return this.call("GET", `/traces/${id}`);
  }

  /** Stops queueing a trace's jobs that are not due yet; queued ones stay. */
  async stopTrace(id: number): Promise<void> {
    await this.call("DELETE", `/traces/${id}`);
  }

  /** REST call and rate-limit counters. */
  stats(): Promise<EmulatorStats> {
    return this.call("GET", "/stats");
  }

  /** Forgets runners, jobs, tokens, faults, stats; keeps repositories and organizations. */
  async reset(): Promise<void> {
    await this.call("POST", "/reset");
  }

  /**
   * Creates a REST token; returns the token string. A `read` token is one without admin rights on the repository
   * (or organization): 403 on every runner and runner-group endpoint, reads included, and on every mutation.
   */
  async createToken(name: string, access: TokenAccess = "admin"): Promise<string> {
    const body = await this.call<{ token: string }>("POST", "/tokens", { name, access });
    return body.token;
  }

  /** Serves another repository (`owner/name`). */
  addRepo(repo: string): Promise<{ id: number; repo: string }> {
    return this.call("POST", "/repos", { repo });
  }

  /** Serves another organization. */
  addOrg(org: string): Promise<{ id: number; org: string }> {
    return this.call("POST", "/orgs", { org });
  }

  /** Sends `workflow_job` webhooks to `url` (signed when `secret` is given); undefined stops them. */
  async setWebhook(url: string | undefined, secret?: string): Promise<void> {
    if (url === undefined) await this.call("DELETE", "/webhook");
    else await this.call("PUT", "/webhook", secret === undefined ? { url } : { url, secret });
  }

  /** Webhook deliveries so far (waits for queued ones first). */
  async webhookDeliveries(): Promise<WebhookDelivery[]> {
    const body = await this.call<{ deliveries: WebhookDelivery[] }>("GET", "/webhook/deliveries");
    return body.deliveries;
  }
}
