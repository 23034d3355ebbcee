/**
 * GitHub's REST API for self-hosted runners under `/api/v3`, as `@octokit/rest` calls it: runners, labels,
 * tokens, JIT configs, runner groups, downloads, workflow runs and jobs, `rate_limit`. The request pipeline
 * is auth → rate limits (injected or spent) → injected latency/5xx → handler → ETag/304 → spend one point.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { EmulatorCore, Identity } from "./core.js";
import { basicError, DOCS_URL, HttpError, validationError } from "./errors.js";
import {
  ANONYMOUS_RATE_LIMIT_PER_HOUR,
  DEFAULT_PER_PAGE,
  DEFAULT_SECONDARY_RETRY_AFTER_S,
  MAX_LABELS_PER_REQUEST,
  MAX_PER_PAGE,
} from "./limits.js";
import { etagOf, ifNoneMatchMatches } from "./rate-limit.js";
import { labelNamesProblem, type ScopeRef } from "./registry.js";
import { dispatchLabels } from "./workflows.js";
import {
  downloadsJson,
  groupJson,
  jobJson,
  labelListJson,
  repositoryJson,
  runJson,
  runOutcome,
  tokenJson,
} from "./representations.js";
import { encodeJitConfig } from "./runner-protocol.js";
import { bodyText, exchangeOf, send, Router, type Exchange, type Reply } from "./router.js";
import type { GroupRecord, OrgRecord, RunnerRecord } from "./state.js";

/** A REST request with its authenticated caller. */
export interface RestExchange extends Exchange {
  identity: Identity;
}

const JSON_HEADERS = {
  "x-github-media-type": "github.v3; format=json",
  "x-github-api-version-selected": "2022-11-28",
  vary: "Accept, Authorization, Cookie, X-GitHub-OTP",
  "access-control-expose-headers": "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset",
};

/** The presented credential: undefined when absent, "" when unparseable. */
export function presentedToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const bearer = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^basic\s+(\S+)\s*$/i.exec(authorization);
  if (basic) {
    // `config.sh --pat` sends Basic `github:<PAT>`.
    const decoded = Buffer.from(basic[1] as string, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon < 0 ? decoded : decoded.slice(colon + 1) || decoded.slice(0, colon);
  }
  return "";
}

function intParam(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** GitHub's 422 for a request body that breaks the operation's schema. */
function invalid(detail: string): HttpError {
  return validationError(`Invalid request.\n\n${detail}`);
}

function requireKeys(body: unknown, keys: string[]): Record<string, unknown> {
  if (!isObject(body)) throw invalid("Request body must be a JSON object.");
  for (const k of keys) if (!(k in body)) throw invalid(`object is missing required key: ${k}`);
  return body;
}

/** The REST API. */
export class RestApi {
  private readonly router = new Router<RestExchange>();

  constructor(private readonly core: EmulatorCore) {
    this.routes();
  }

  /** Serves one request whose path (relative to `/api/v3`) is `path`. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const core = this.core;
    core.broker.sweepBeforeRequest();
    const method = req.method ?? "GET";
    const match = this.router.match(method, path);
    const routeKey = match.kind === "found" ? `${method} ${match.route.template}` : `${method} (no route)`;
    const presented = presentedToken(req.headers.authorization);
    const identity = presented ? core.identityOf(presented) : undefined;
    const who = identity?.name ?? "anonymous";
    const bucket = core.limiter.bucket(who, identity ? core.options.rateLimitPerHour : ANONYMOUS_RATE_LIMIT_PER_HOUR);
    const headers: Record<string, string> = { ...JSON_HEADERS, "x-github-request-id": requestId() };
    const reply = (status: number, body: unknown, extra: Record<string, string> = {}): void => {
      send(res, status, body === undefined ? undefined : JSON.stringify(body), { ...headers, ...core.limiter.headers(bucket), ...extra });
    };
    core.stats.count(who, routeKey, "calls");

    const fault = core.faults.rateLimit();
    if (fault?.secondary) {
      core.stats.count(who, routeKey, "rateLimited");
      const retryAfter = String(fault.retryAfterS ?? DEFAULT_SECONDARY_RETRY_AFTER_S);
      return reply(fault.status ?? 403, {
        message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        status: String(fault.status ?? 403),
      }, { "retry-after": retryAfter });
    }
    // GitHub: `GET /rate_limit` does not spend the primary limit and answers even when it is used up.
    const isRateLimitRead = method === "GET" && match.kind === "found" && match.route.template === "/rate_limit";
    if (core.limiter.exhausted(bucket) && !isRateLimitRead) {
      core.stats.count(who, routeKey, "rateLimited");
      const status = fault?.status ?? 403;
      return reply(status, {
        message: `API rate limit exceeded for ${identity ? "user ID 1" : "127.0.0.1"}.`,
        documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
        status: String(status),
      });
    }
    const latency = core.faults.latencyMs();
    if (latency > 0) await sleep(latency);
    if (core.faults.rollError()) {
      core.stats.count(who, routeKey, "injectedErrors");
      const status = core.faults.errorStatus();
      return reply(status, { message: "Server Error", documentation_url: DOCS_URL, status: String(status) });
    }

    let result: Reply;
    try {
      if (!identity) {
        throw basicError(401, presented === undefined ? "Requires authentication" : "Bad credentials");
      }
      if (match.kind !== "found") throw basicError(404, "Not Found");
      const x = exchangeOf(req, res, url, { template: match.route.template, params: match.params }) as RestExchange;
      x.identity = identity;
      result = await match.route.handler(x);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      result = { status: err.status, body: err.body, headers: err.headers };
    }
    const text = bodyText(result);
    const extra: Record<string, string> = { ...result.headers };
    if (method === "GET" && result.status === 200 && text !== undefined) {
      const etag = etagOf(text);
      extra.etag = etag;
      if (ifNoneMatchMatches(req.headers["if-none-match"], etag)) {
        // GitHub: a 304 to a conditional request does not count against the primary rate limit.
        core.stats.count(who, routeKey, "notModified");
        return send(res, 304, undefined, { ...headers, ...core.limiter.headers(bucket), ...extra });
      }
    }
    if (!isRateLimitRead) {
      core.limiter.spend(bucket);
      core.stats.count(who, routeKey, "points");
    }
    send(res, result.status, text, { ...headers, ...core.limiter.headers(bucket), ...extra });
  }

  // ---- helpers ------------------------------------------------------------------------------------

  /**
   * The scope of a request; 404 if not served. A `read` token (no admin rights) gets GitHub's 403 on every
   * runner and runner-group endpoint, reads included (they need repository admin, `Administration` for
   * fine-grained tokens and Apps, or the organization's `Self-hosted runners` permission), and on every other
   * mutation; it may read workflow runs and jobs. The 403 carries `X-Accepted-GitHub-Permissions`, as GitHub's does.
   */
  private scope(x: RestExchange): ScopeRef {
    const p = x.params;
    const scope = p.org !== undefined ? this.core.registry.orgScope(p.org) : this.core.registry.repoScope(p.owner ?? "", p.repo ?? "");
    if (!scope) throw basicError(404, "Not Found");
    if (x.identity.access === "admin") return scope;
    const runnerRoute = /\/actions\/runner(s|-groups)(\/|$)/.test(x.template);
    if (runnerRoute || x.method !== "GET") {
      const level = x.method === "GET" ? "read" : "write";
      const permission = !runnerRoute ? `actions=${level}` : scope.kind === "org" ? `organization_self_hosted_runners=${level}` : `administration=${level}`;
      throw basicError(403, "Resource not accessible by personal access token", DOCS_URL, { "x-accepted-github-permissions": permission });
    }
    return scope;
  }

  private orgOnly(x: RestExchange): OrgRecord {
    const scope = this.scope(x);
    if (scope.kind !== "org") throw basicError(404, "Not Found");
    return scope.org;
  }

  private runnerOf(x: RestExchange, scope: ScopeRef): RunnerRecord {
    const id = intParam(x.params.runner_id);
    const runner = id === undefined ? undefined : this.core.registry.runner(scope.key, id);
    if (!runner) throw basicError(404, "Not Found");
    return runner;
  }

  private groupOf(x: RestExchange, org: OrgRecord): GroupRecord {
    const id = intParam(x.params.runner_group_id);
    const group = id === undefined ? undefined : this.core.registry.group(org, id);
    if (!group) throw basicError(404, "Not Found");
    return group;
  }

  /** One page of `items` and its `Link` header, GitHub style. */
  private page<T>(x: RestExchange, items: readonly T[]): { items: T[]; headers: Record<string, string> } {
    const q = x.url.searchParams;
    const perPage = Math.min(MAX_PER_PAGE, Math.max(1, intParam(q.get("per_page") ?? undefined) ?? DEFAULT_PER_PAGE));
    const page = Math.max(1, intParam(q.get("page") ?? undefined) ?? 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number, rel: string): string => {
      const u = new URL(`${this.core.urls.web}${x.url.pathname}${x.url.search}`);
      u.searchParams.set("per_page", String(perPage));
      u.searchParams.set("page", String(n));
      return `<${u.toString()}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(Math.min(page - 1, last), "prev"));
    if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
    if (page > 1) links.push(link(1, "first"));
    return {
      items: items.slice((page - 1) * perPage, page * perPage),
      headers: links.length > 0 ? { link: links.join(", ") } : {},
    };
  }

  private runnerList(x: RestExchange, scope: ScopeRef, runners: RunnerRecord[]): Reply {
    const p = this.page(x, runners);
    const inOrg = scope.kind === "org";
    return { status: 200, body: { total_count: runners.length, runners: p.items.map((r) => this.core.runnerView(r, inOrg)) }, headers: p.headers };
  }

  // ---- routes -------------------------------------------------------------------------------------

  private routes(): void {
    const r = this.router;
    const core = this.core;
    const both = (method: string, suffix: string, handler: (x: RestExchange, scope: ScopeRef) => Reply | Promise<Reply>): void => {
      for (const prefix of ["/repos/{owner}/{repo}", "/orgs/{org}"]) r.add(method, prefix + suffix, (x) => handler(x, this.scope(x)));
    };

    both("GET", "/actions/runners", (x, scope) => {
      const name = x.url.searchParams.get("name");
      const runners = core.registry.runnersIn(scope.key).filter((rr) => name === null || rr.name.toLowerCase() === name.toLowerCase());
      return this.runnerList(x, scope, runners);
    });
    both("GET", "/actions/runners/downloads", () => ({ status: 200, body: downloadsJson(core.releases.downloadEntries(core.urls.web), core.releases.latest()) }));
    both("POST", "/actions/runners/registration-token", (_x, scope) => {
      const t = core.registry.issueToken("registration", scope);
      return { status: 201, body: tokenJson(t.token, t.expiresAt) };
    });
    both("POST", "/actions/runners/remove-token", (_x, scope) => {
      const t = core.registry.issueToken("remove", scope);
      return { status: 201, body: tokenJson(t.token, t.expiresAt) };
    });
    both("POST", "/actions/runners/generate-jitconfig", async (x, scope) => {
      const body = requireKeys(await x.json(), ["name", "runner_group_id", "labels"]);
      if (typeof body.name !== "string" || body.name.trim() === "") throw invalid("For 'properties/name', the value is not a non-empty string.");
      if (typeof body.runner_group_id !== "number" || !Number.isInteger(body.runner_group_id)) {
        throw invalid(`For 'properties/runner_group_id', ${JSON.stringify(body.runner_group_id)} is not an integer.`);
      }
      const problem = labelNamesProblem(body.labels, 1, MAX_LABELS_PER_REQUEST);
      if (problem) throw invalid(problem);
      if (body.work_folder !== undefined && typeof body.work_folder !== "string") throw invalid("For 'properties/work_folder', the value is not a string.");
      // Repository runners have no groups of their own; only the default id 1 exists there.
      const group = scope.kind === "org" ? core.registry.group(scope.org, body.runner_group_id) : body.runner_group_id === 1 ? core.registry.defaultGroupOf(scope) : undefined;
      if (!group) throw basicError(404, "Not Found");
      const { runner, credential } = core.registry.register({
        scope,
        name: body.name,
        customLabels: body.labels as string[],
        defaultLabels: false,
        groupId: group.id,
        ephemeral: true,
        replace: false,
        workFolder: (body.work_folder) ?? "_work",
        os: "unknown",
      });
      const encoded = encodeJitConfig(core, runner, credential, group);
      return { status: 201, body: { runner: core.runnerView(runner, scope.kind === "org"), encoded_jit_config: encoded } };
    });
    both("GET", "/actions/runners/{runner_id}", (x, scope) => ({ status: 200, body: core.runnerView(this.runnerOf(x, scope), scope.kind === "org") }));
    both("DELETE", "/actions/runners/{runner_id}", (x, scope) => {
      const runner = this.runnerOf(x, scope);
      core.registry.assertNotBusy(runner);
      core.registry.deleteRunner(runner);
      return { status: 204 };
    });

    both("GET", "/actions/runners/{runner_id}/labels", (x, scope) => ({ status: 200, body: labelListJson(this.runnerOf(x, scope).labels) }));
    both("POST", "/actions/runners/{runner_id}/labels", async (x, scope) => {
      const runner = this.runnerOf(x, scope);
      const body = requireKeys(await x.json(), ["labels"]);
      const problem = labelNamesProblem(body.labels, 1, MAX_LABELS_PER_REQUEST);
      if (problem) throw invalid(problem);
      return { status: 200, body: labelListJson(core.registry.addCustomLabels(runner, body.labels as string[])) };
    });
    both("PUT", "/actions/runners/{runner_id}/labels", async (x, scope) => {
      const runner = this.runnerOf(x, scope);
      const body = requireKeys(await x.json(), ["labels"]);
      const problem = labelNamesProblem(body.labels, 0, MAX_LABELS_PER_REQUEST);
      if (problem) throw invalid(problem);
      return { status: 200, body: labelListJson(core.registry.setCustomLabels(runner, body.labels as string[])) };
    });
    both("DELETE", "/actions/runners/{runner_id}/labels", (x, scope) => {
      const runner = this.runnerOf(x, scope);
      return { status: 200, body: labelListJson(core.registry.setCustomLabels(runner, [])) };
    });
    both("DELETE", "/actions/runners/{runner_id}/labels/{name}", (x, scope) => {
      const runner = this.runnerOf(x, scope);
      return { status: 200, body: labelListJson(core.registry.removeLabel(runner, x.params.name ?? "")) };
    });

    this.groupRoutes();
    this.runRoutes();

    r.add("GET", "/rate_limit", (x) => {
      const b = core.limiter.bucket(x.identity.name, core.options.rateLimitPerHour);
      const rate = { limit: b.limit, used: b.used, remaining: Math.max(0, b.limit - b.used), reset: Math.ceil(b.resetAt / 1000) };
      const fresh = { limit: b.limit, used: 0, remaining: b.limit, reset: Math.ceil(b.resetAt / 1000) };
      return { status: 200, body: { resources: { core: rate, search: fresh, graphql: fresh, integration_manifest: fresh, actions_runner_registration: fresh }, rate } };
    });
  }

  private groupRoutes(): void {
    const r = this.router;
    const core = this.core;
    const base = "/orgs/{org}/actions/runner-groups";

    r.add("GET", base, (x) => {
      const org = this.orgOnly(x);
      const repoName = x.url.searchParams.get("visible_to_repository");
      const repo = repoName === null ? undefined : core.registry.repoScope(org.login, repoName);
      const groups = org.groups.filter(
        (g) => repoName === null || (repo?.kind === "repo" && (g.visibility !== "selected" || g.selectedRepositoryIds.includes(repo.repo.id))),
      );
      const p = this.page(x, groups);
      return { status: 200, body: { total_count: groups.length, runner_groups: p.items.map((g) => groupJson(core.urls, org, g)) }, headers: p.headers };
    });
    r.add("POST", base, async (x) => {
      const org = this.orgOnly(x);
      const body = requireKeys(await x.json(), ["name"]);
      const fields = groupFields(body, true) as Partial<GroupRecord> & { name: string };
      const runners = intList(body, "runners") ?? [];
      for (const id of runners) if (!core.registry.runner(`org:${org.login.toLowerCase()}`, id)) throw basicError(404, "Not Found");
      return { status: 201, body: groupJson(core.urls, org, core.registry.createGroup(org, fields, runners)) };
    });
    r.add("GET", `${base}/{runner_group_id}`, (x) => {
      const org = this.orgOnly(x);
      return { status: 200, body: groupJson(core.urls, org, this.groupOf(x, org)) };
    });
    r.add("PATCH", `${base}/{runner_group_id}`, async (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const body = requireKeys(await x.json(), ["name"]);
      return { status: 200, body: groupJson(core.urls, org, core.registry.updateGroup(org, group, groupFields(body, false))) };
    });
    r.add("DELETE", `${base}/{runner_group_id}`, (x) => {
      const org = this.orgOnly(x);
      core.registry.deleteGroup(org, this.groupOf(x, org));
      return { status: 204 };
    });
    r.add("GET", `${base}/{runner_group_id}/runners`, (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const scope = core.registry.orgScope(org.login) as ScopeRef;
      return this.runnerList(x, scope, core.registry.runnersIn(scope.key).filter((rr) => rr.groupId === group.id));
    });
    r.add("PUT", `${base}/{runner_group_id}/runners`, async (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const ids = intList(requireKeys(await x.json(), ["runners"]), "runners") ?? [];
      const key = `org:${org.login.toLowerCase()}`;
      for (const id of ids) if (!core.registry.runner(key, id)) throw basicError(404, "Not Found");
      for (const rr of core.registry.runnersIn(key)) {
        if (ids.includes(rr.id)) core.registry.moveRunnerToGroup(org, rr.id, group.id);
        else if (rr.groupId === group.id && !group.isDefault) core.registry.moveRunnerToGroup(org, rr.id, 1);
      }
      return { status: 204 };
    });
    r.add("PUT", `${base}/{runner_group_id}/runners/{runner_id}`, (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      core.registry.moveRunnerToGroup(org, intParam(x.params.runner_id) ?? -1, group.id);
      return { status: 204 };
    });
    r.add("DELETE", `${base}/{runner_group_id}/runners/{runner_id}`, (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const runner = core.registry.runner(`org:${org.login.toLowerCase()}`, intParam(x.params.runner_id) ?? -1);
      if (!runner) throw basicError(404, "Not Found");
      // "The runner is then returned to the default group."
      if (runner.groupId === group.id) core.registry.moveRunnerToGroup(org, runner.id, 1);
      return { status: 204 };
    });
    r.add("GET", `${base}/{runner_group_id}/repositories`, (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const repos = group.selectedRepositoryIds.map((id) => core.registry.repoById(id)).filter((rr) => rr !== undefined);
      return {
        status: 200,
        body: { total_count: repos.length, repositories: repos.map((rr) => repositoryJson(core.urls, rr, core.registry.orgOf(rr), core.startedAt)) },
      };
    });
    r.add("PUT", `${base}/{runner_group_id}/repositories`, async (x) => {
      const org = this.orgOnly(x);
      const group = this.groupOf(x, org);
      const ids = intList(requireKeys(await x.json(), ["selected_repository_ids"]), "selected_repository_ids") ?? [];
      core.registry.updateGroup(org, group, { selectedRepositoryIds: ids });
      return { status: 204 };
    });
    for (const method of ["PUT", "DELETE"]) {
      r.add(method, `${base}/{runner_group_id}/repositories/{repository_id}`, (x) => {
        const org = this.orgOnly(x);
        const group = this.groupOf(x, org);
        if (group.visibility !== "selected") throw validationError("The runner group visibility must be set to selected.");
        const id = intParam(x.params.repository_id);
        if (id === undefined || !core.registry.repoById(id)) throw basicError(404, "Not Found");
        const ids = group.selectedRepositoryIds.filter((v) => v !== id);
        if (method === "PUT") ids.push(id);
        core.registry.updateGroup(org, group, { selectedRepositoryIds: ids });
        return { status: 204 };
      });
    }
  }

  private runRoutes(): void {
    const r = this.router;
    const core = this.core;
    const repoOf = (x: RestExchange) => {
      const scope = this.scope(x);
      if (scope.kind !== "repo") throw basicError(404, "Not Found");
      return scope.repo;
    };
    const jobsOfRun = (runId: number) => [...core.state.jobs.values()].filter((j) => j.runId === runId).sort((a, b) => a.id - b.id);

    r.add("GET", "/repos/{owner}/{repo}/actions/runs", (x) => {
      const repo = repoOf(x);
      const status = x.url.searchParams.get("status");
      const event = x.url.searchParams.get("event");
      const runs = [...core.state.runs.values()]
        .filter((run) => run.repoId === repo.id)
        .filter((run) => event === null || (run.event ?? "push") === event)
        .filter((run) => {
          if (status === null) return true;
          const o = runOutcome(jobsOfRun(run.id));
          return o.status === status || o.conclusion === status;
        })
        .sort((a, b) => b.id - a.id);
      const p = this.page(x, runs);
      const org = core.registry.orgOf(repo);
      return {
        status: 200,
        body: { total_count: runs.length, workflow_runs: p.items.map((run) => runJson(core.urls, repo, org, run, jobsOfRun(run.id), core.startedAt)) },
        headers: p.headers,
      };
    });
    r.add("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", async (x) => {
      const repo = repoOf(x);
      const def = core.workflows.find(repo.id, x.params.workflow_id ?? "");
      if (def === undefined) throw basicError(404, "Not Found");
      const body = requireKeys(await x.json(), ["ref"]);
      if (typeof body.ref !== "string" || body.ref === "") throw invalid("For 'properties/ref', the value is not a non-empty string.");
      const ref = body.ref.replace(/^refs\/(heads|tags)\//, "");
      const labels = dispatchLabels(def, body.inputs, invalid);
      core.broker.createJob(repo, {
        labels,
        durationMs: def.durationMs,
        conclusion: def.conclusion,
        name: def.name,
        run: { name: def.name, event: "workflow_dispatch", headBranch: ref, path: `.github/workflows/${def.file}`, workflowId: def.id },
      });
      return { status: 204 };
    });
    r.add("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", (x) => {
      const repo = repoOf(x);
      const run = core.state.runs.get(intParam(x.params.run_id) ?? -1);
      if (!run || run.repoId !== repo.id) throw basicError(404, "Not Found");
      return { status: 200, body: runJson(core.urls, repo, core.registry.orgOf(repo), run, jobsOfRun(run.id), core.startedAt) };
    });
    r.add("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", (x) => {
      const repo = repoOf(x);
      const run = core.state.runs.get(intParam(x.params.run_id) ?? -1);
      if (!run || run.repoId !== repo.id) throw basicError(404, "Not Found");
      const jobs = jobsOfRun(run.id);
      const p = this.page(x, jobs);
      return { status: 200, body: { total_count: jobs.length, jobs: p.items.map((j) => jobJson(core.urls, repo, run, j)) }, headers: p.headers };
    });
    r.add("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", (x) => {
      const repo = repoOf(x);
      const job = core.state.jobs.get(intParam(x.params.job_id) ?? -1);
      const run = job ? core.state.runs.get(job.runId) : undefined;
      if (!job || !run || job.repoId !== repo.id) throw basicError(404, "Not Found");
      return { status: 200, body: jobJson(core.urls, repo, run, job) };
    });
  }
}

function intList(body: Record<string, unknown>, key: string): number[] | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((n) => Number.isInteger(n))) throw invalid(`For 'properties/${key}', the value is not an array of integers.`);
  return v as number[];
}

/** Group fields of a create/update body, checked against the spec's types. */
function groupFields(body: Record<string, unknown>, creating: boolean): Partial<GroupRecord> {
  const out: Partial<GroupRecord> = {};
  if (typeof body.name !== "string" || body.name.trim() === "") throw invalid("For 'properties/name', the value is not a non-empty string.");
  out.name = body.name;
  if (body.visibility !== undefined) {
    if (!["selected", "all", "private"].includes(body.visibility as string)) throw invalid(`For 'properties/visibility', ${JSON.stringify(body.visibility)} is not a member of ["selected", "all", "private"].`);
    out.visibility = body.visibility as GroupRecord["visibility"];
  } else if (creating) out.visibility = "all";
  for (const [key, field] of [
    ["allows_public_repositories", "allowsPublicRepositories"],
    ["restricted_to_workflows", "restrictedToWorkflows"],
  ] as const) {
    if (body[key] === undefined) continue;
    if (typeof body[key] !== "boolean") throw invalid(`For 'properties/${key}', the value is not a boolean.`);
    out[field] = body[key];
  }
  if (body.selected_workflows !== undefined) {
    if (!Array.isArray(body.selected_workflows) || !body.selected_workflows.every((w) => typeof w === "string")) {
      throw invalid("For 'properties/selected_workflows', the value is not an array of strings.");
    }
    out.selectedWorkflows = body.selected_workflows;
  }
  const ids = intList(body, "selected_repository_ids");
  if (ids !== undefined) out.selectedRepositoryIds = ids;
  return out;
}

let requestCounter = 0;
function requestId(): string {
  requestCounter += 1;
  return `LK00:${process.pid.toString(16).toUpperCase()}:${requestCounter.toString(16).toUpperCase()}`;
}

/** Answers a REST request that failed outside the pipeline (should not happen) with a 500. */
export function internalError(res: ServerResponse, err: unknown): void {
  send(res, 500, JSON.stringify({ message: `Internal emulator error: ${String(err)}`, documentation_url: DOCS_URL }), {});
}
