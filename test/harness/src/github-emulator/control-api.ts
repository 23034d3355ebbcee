/**
 * The test control API under `/_emulator/` (no auth; the emulator listens on loopback): queue jobs and watch
 * their outcome, inject faults, read stats, add scopes and tokens, configure webhooks, reset.
 * Documented in `test/harness/README.md`.
 */
import type { EmulatorCore } from "./core.js";
import type { JobView, RunnerView } from "./control-types.js";
import { plainError } from "./errors.js";
import { parseFaults } from "./faults.js";
import { MAX_CONTROL_WAIT_MS } from "./limits.js";
import { parseRepoName } from "./options.js";
import { resolveRealism } from "./realism.js";
import { iso } from "./representations.js";
import { Router, type Exchange, type Reply } from "./router.js";
import type { JobRecord, JobStatus, RunnerConclusion } from "./state.js";

const STATUSES: readonly JobStatus[] = ["queued", "in_progress", "completed"];
const CONCLUSIONS: readonly RunnerConclusion[] = ["success", "failure", "cancelled"];

/** A job as the control API shows it. */
export function jobView(core: EmulatorCore, job: JobRecord): JobView {
  const repo = core.registry.repoById(job.repoId);
  const t = (ms: number | null): string | null => (ms === null ? null : iso(ms));
  return {
    id: job.id,
    runId: job.runId,
    repo: repo ? `${repo.owner}/${repo.name}` : "",
    name: job.name,
    labels: [...job.labels],
    durationMs: job.durationMs,
    plannedConclusion: job.plannedConclusion,
    status: job.status,
    conclusion: job.conclusion,
    runnerId: job.runnerId,
    runnerName: job.runnerName,
    runnerGroupId: job.runnerGroupId,
    createdAt: iso(job.createdAt),
    startedAt: t(job.startedAt),
    completedAt: t(job.completedAt),
  };
}

async function objectBody(x: Exchange): Promise<Record<string, unknown>> {
  const body = await x.json();
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw plainError(400, "body must be a JSON object");
  return body as Record<string, unknown>;
}

/** Builds the `/_emulator/` router (paths relative to `/_emulator`). */
export function controlRouter(core: EmulatorCore): Router {
  const r = new Router();
  const jobById = (x: Exchange): JobRecord => {
    const job = core.state.jobs.get(Number(x.params.id));
    if (!job) throw plainError(404, `no job ${x.params.id}`);
    return job;
  };

  r.add("POST", "/repos/{owner}/{repo}/jobs", async (x): Promise<Reply> => {
    const scope = core.registry.repoScope(x.params.owner ?? "", x.params.repo ?? "");
    if (scope?.kind !== "repo") throw plainError(404, `repository ${x.params.owner}/${x.params.repo} is not served`);
    const body = await objectBody(x);
    const labels = body.labels;
    if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === "string" && l.trim() !== "")) {
      throw plainError(400, "labels: must be a non-empty array of non-empty strings");
    }
    const durationMs = body.durationMs ?? 0;
    if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) throw plainError(400, "durationMs: must be a non-negative number");
    const conclusion = body.conclusion ?? "success";
    if (!CONCLUSIONS.includes(conclusion as RunnerConclusion)) throw plainError(400, `conclusion: must be one of ${CONCLUSIONS.join(", ")}`);
    const name = body.name ?? `job-${core.state.counters.job + 1}`;
    if (typeof name !== "string" || name === "") throw plainError(400, "name: must be a non-empty string");
    const job = core.broker.createJob(scope.repo, { labels: labels as string[], durationMs, conclusion: conclusion as RunnerConclusion, name });
    return { status: 201, body: { id: job.id, runId: job.runId } };
  });

  r.add("PUT", "/repos/{owner}/{repo}/workflows/{file}", async (x): Promise<Reply> => {
    const scope = core.registry.repoScope(x.params.owner ?? "", x.params.repo ?? "");
    if (scope?.kind !== "repo") throw plainError(404, `repository ${x.params.owner}/${x.params.repo} is not served`);
    const def = core.workflows.define(scope.repo.id, x.params.file ?? "", await objectBody(x));
    return { status: 200, body: def };
  });

  r.add("GET", "/jobs", (x): Reply => {
    const status = x.url.searchParams.get("status");
    const jobs = [...core.state.jobs.values()].filter((j) => status === null || j.status === status).sort((a, b) => a.id - b.id);
    return { status: 200, body: { jobs: jobs.map((j) => jobView(core, j)) } };
  });

  r.add("GET", "/jobs/{id}", async (x): Promise<Reply> => {
    const job = jobById(x);
    const want = x.url.searchParams.get("wait_status");
    if (want !== null) {
      if (!STATUSES.includes(want as JobStatus)) throw plainError(400, `wait_status: must be one of ${STATUSES.join(", ")}`);
      const raw = Number(x.url.searchParams.get("wait_ms") ?? "10000");
      const waitMs = Math.min(MAX_CONTROL_WAIT_MS, Number.isFinite(raw) && raw >= 0 ? raw : 10_000);
      const order = (s: JobStatus): number => STATUSES.indexOf(s);
      // Waits until the job reaches (or passes) the wanted status, the time is up, or the client leaves.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          stop();
          clearTimeout(timer);
          x.signal.removeEventListener("abort", done);
          resolve();
        };
        const stop = core.broker.watchJobs(() => {
          if (order(job.status) >= order(want as JobStatus)) done();
        });
        const timer = setTimeout(done, waitMs);
        x.signal.addEventListener("abort", done);
        if (order(job.status) >= order(want as JobStatus)) done();
      });
    }
    return { status: 200, body: jobView(core, job) };
  });

  r.add("POST", "/jobs/{id}/cancel", (x): Reply => {
    const job = jobById(x);
    core.broker.cancelQueuedJob(job);
    return { status: 200, body: jobView(core, job) };
  });

  r.add("GET", "/runners", (): Reply => {
    const runners: RunnerView[] = [...core.state.runners.values()]
      .sort((a, b) => a.id - b.id)
      .map((runner) => {
        const scope = core.registry.scopeByKey(runner.scope);
        return {
          id: runner.id,
          scopeKind: scope?.kind ?? "repo",
          scope: scope === undefined ? runner.scope : scope.kind === "repo" ? `${scope.repo.owner}/${scope.repo.name}` : scope.org.login,
          name: runner.name,
          status: core.broker.isOnline(runner) ? "online" : "offline",
          busy: runner.jobId !== null,
          ephemeral: runner.ephemeral,
          labels: runner.labels.map((l) => l.name),
          os: runner.os,
          version: runner.version,
          groupId: runner.groupId,
          jobId: runner.jobId,
        };
      });
    return { status: 200, body: { runners } };
  });

  r.add("GET", "/faults", (): Reply => ({ status: 200, body: core.faults.get() }));
  r.add("POST", "/faults", async (x): Promise<Reply> => {
    const faults = parseFaults(await x.json());
    const now = core.faults.set(faults);
    if (faults.rateLimit?.remaining !== undefined) {
      const o = faults.rateLimit;
      core.limiter.setOverride(o.resetAfterMs === undefined ? { remaining: o.remaining as number } : { remaining: o.remaining as number, resetAfterMs: o.resetAfterMs });
    }
    return { status: 200, body: now };
  });
  r.add("DELETE", "/faults", (): Reply => {
    core.faults.clear();
    // Clearing rate-limit faults also gives every token a fresh window.
    core.limiter.reset();
    return { status: 204 };
  });

  r.add("GET", "/realism", (): Reply => ({ status: 200, body: core.realism() }));
  r.add("PUT", "/realism", async (x): Promise<Reply> => {
    // Fields not given fall back to the fault-free value, so the body states the whole setting.
    let realism;
    try {
      realism = resolveRealism(await objectBody(x));
    } catch (err) {
      throw plainError(400, (err as Error).message);
    }
    core.setRealism(realism);
    return { status: 200, body: realism };
  });

  r.add("POST", "/traces", async (x): Promise<Reply> => ({ status: 201, body: core.traces.start(await x.json()) }));
  r.add("GET", "/traces/{id}", (x): Reply => ({ status: 200, body: core.traces.view(Number(x.params.id)) }));
  r.add("DELETE", "/traces/{id}", (x): Reply => {
    core.traces.stop(Number(x.params.id));
    return { status: 204 };
  });

  r.add("GET", "/runner-releases", (): Reply => ({ status: 200, body: { latest: core.releases.latest(), releases: core.releases.views() } }));
  r.add("POST", "/runner-releases", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    if (typeof body.version !== "string") throw plainError(400, "version must be a string such as 2.337.0");
    if (body.broken !== undefined && typeof body.broken !== "boolean") throw plainError(400, "broken must be a boolean");
    try {
      core.releases.publish(body.version, { broken: body.broken === true });
    } catch (err) {
      throw plainError(400, (err as Error).message);
    }
    return { status: 201, body: { latest: core.releases.latest(), releases: core.releases.views() } };
  });
  r.add("POST", "/runner-releases/faults", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    const f: { wrongChecksum?: boolean; truncate?: { count: number; afterBytes: number } } = {};
    if (body.wrongChecksum !== undefined) {
      if (typeof body.wrongChecksum !== "boolean") throw plainError(400, "wrongChecksum must be a boolean");
      f.wrongChecksum = body.wrongChecksum;
    }
    if (body.truncate !== undefined) {
      const t = body.truncate as Record<string, unknown>;
      if (typeof t !== "object" || t === null || !Number.isInteger(t.count) || !Number.isInteger(t.afterBytes)) {
        throw plainError(400, "truncate must be {count, afterBytes} (integers)");
      }
      f.truncate = { count: t.count as number, afterBytes: t.afterBytes as number };
    }
    return { status: 200, body: core.releases.setFaults(f) };
  });
  r.add("DELETE", "/runner-releases/faults", (): Reply => {
    core.releases.clearFaults();
    return { status: 204 };
  });

  r.add("GET", "/stats", (): Reply => ({ status: 200, body: core.stats.snapshot() }));
  r.add("POST", "/reset", (): Reply => {
    core.reset();
    return { status: 204 };
  });

  r.add("POST", "/tokens", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    if (typeof body.name !== "string" || body.name === "") throw plainError(400, "name: must be a non-empty string");
    const access = body.access ?? "admin";
    if (access !== "admin" && access !== "read") throw plainError(400, 'access: must be "admin" or "read"');
    return { status: 201, body: { name: body.name, token: core.addToken(body.name, access) } };
  });
  r.add("POST", "/repos", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    let repo;
    try {
      repo = parseRepoName("repo", String(body.repo));
    } catch (err) {
      throw plainError(400, (err as Error).message);
    }
    const record = core.registry.addRepo(repo.owner, repo.name);
    return { status: 201, body: { id: record.id, repo: `${record.owner}/${record.name}` } };
  });
  r.add("POST", "/orgs", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    if (typeof body.org !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(body.org)) throw plainError(400, "org: not an organization name");
    const org = core.registry.addOrg(body.org);
    return { status: 201, body: { id: org.id, org: org.login } };
  });

  r.add("PUT", "/webhook", async (x): Promise<Reply> => {
    const body = await objectBody(x);
    if (typeof body.url !== "string" || !URL.canParse(body.url)) throw plainError(400, "url: must be a URL");
    if (body.secret !== undefined && typeof body.secret !== "string") throw plainError(400, "secret: must be a string");
    core.webhooks.configure(body.secret === undefined ? { url: body.url } : { url: body.url, secret: body.secret });
    return { status: 204 };
  });
  r.add("DELETE", "/webhook", (): Reply => {
    core.webhooks.configure(undefined);
    return { status: 204 };
  });
  r.add("GET", "/webhook/deliveries", async (): Promise<Reply> => {
    await core.webhooks.idle();
    return { status: 200, body: { deliveries: core.webhooks.deliveries() } };
  });

  return r;
}
