/**
 * The emulator's REST API through @octokit/rest, every response checked against GitHub's OpenAPI
 * description: runners, labels, tokens, JIT configs, groups, downloads, workflow runs and jobs, auth errors,
 * pagination with Link headers, and the documented error codes of each operation.
 */
import type { Octokit } from "@octokit/rest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OpenApiValidator, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { checkedFetch, checkedOctokit, ConformanceLog, errorOf, ProtocolRunner, statusOf } from "./github-emulator-fixtures.js";

let emu: GitHubEmulator;
let log: ConformanceLog;
let octokit: Octokit;
const READ_TOKEN = "t-read-only";

beforeAll(async () => {
  const validator = OpenApiValidator.load();
  emu = await startGitHubEmulator({
    token: "t-admin",
    repos: ["acme/api", "acme/web", "acme/pages", "solo/tool"],
    orgs: ["acme"],
    tokens: [{ name: "reader", token: READ_TOKEN, access: "read" }],
    offlineAfterMs: 30_000,
  });
  log = new ConformanceLog(validator, emu.apiUrl);
  octokit = checkedOctokit(emu, log);
});

afterAll(async () => {
  await emu?.stop();
});

afterEach(() => {
  const violations = log.violations.splice(0);
  expect(violations).toEqual([]);
});

/** The runner endpoints of one scope, through Octokit's typed methods. */
function scopeApi(kind: "repo" | "org") {
  const a = octokit.actions;
  const repo = { owner: "acme", repo: "api" };
  const org = { org: "acme" };
  return kind === "repo"
    ? {
        web: "acme/api",
        list: (p: { name?: string; per_page?: number; page?: number } = {}) => a.listSelfHostedRunnersForRepo({ ...repo, ...p }),
        get: (runner_id: number) => a.getSelfHostedRunnerForRepo({ ...repo, runner_id }),
        del: (runner_id: number) => a.deleteSelfHostedRunnerFromRepo({ ...repo, runner_id }),
        regToken: () => a.createRegistrationTokenForRepo(repo),
        removeToken: () => a.createRemoveTokenForRepo(repo),
        jit: (body: { name: string; runner_group_id: number; labels: string[]; work_folder?: string }) => a.generateRunnerJitconfigForRepo({ ...repo, ...body }),
        labels: (runner_id: number) => a.listLabelsForSelfHostedRunnerForRepo({ ...repo, runner_id }),
        addLabels: (runner_id: number, labels: string[]) => a.addCustomLabelsToSelfHostedRunnerForRepo({ ...repo, runner_id, labels }),
        setLabels: (runner_id: number, labels: string[]) => a.setCustomLabelsForSelfHostedRunnerForRepo({ ...repo, runner_id, labels }),
        removeAll: (runner_id: number) => a.removeAllCustomLabelsFromSelfHostedRunnerForRepo({ ...repo, runner_id }),
        removeOne: (runner_id: number, name: string) => a.removeCustomLabelFromSelfHostedRunnerForRepo({ ...repo, runner_id, name }),
        downloads: () => a.listRunnerApplicationsForRepo(repo),
      }
    : {
        web: "acme",
        list: (p: { name?: string; per_page?: number; page?: number } = {}) => a.listSelfHostedRunnersForOrg({ ...org, ...p }),
        get: (runner_id: number) => a.getSelfHostedRunnerForOrg({ ...org, runner_id }),
        del: (runner_id: number) => a.deleteSelfHostedRunnerFromOrg({ ...org, runner_id }),
        regToken: () => a.createRegistrationTokenForOrg(org),
        removeToken: () => a.createRemoveTokenForOrg(org),
        jit: (body: { name: string; runner_group_id: number; labels: string[]; work_folder?: string }) => a.generateRunnerJitconfigForOrg({ ...org, ...body }),
        labels: (runner_id: number) => a.listLabelsForSelfHostedRunnerForOrg({ ...org, runner_id }),
        addLabels: (runner_id: number, labels: string[]) => a.addCustomLabelsToSelfHostedRunnerForOrg({ ...org, runner_id, labels }),
        setLabels: (runner_id: number, labels: string[]) => a.setCustomLabelsForSelfHostedRunnerForOrg({ ...org, runner_id, labels }),
        removeAll: (runner_id: number) => a.removeAllCustomLabelsFromSelfHostedRunnerForOrg({ ...org, runner_id }),
        removeOne: (runner_id: number, name: string) => a.removeCustomLabelFromSelfHostedRunnerForOrg({ ...org, runner_id, name }),
        downloads: () => a.listRunnerApplicationsForOrg(org),
      };
}

/** Registers a runner through the runner protocol (so it has read-only default labels) and connects it. */
async function protocolRunner(scope: string, name: string, labels: string[] = []): Promise<ProtocolRunner> {
  const isOrg = !scope.includes("/");
  const [owner, repo] = scope.split("/") as [string, string];
  const t = isOrg ? await octokit.actions.createRegistrationTokenForOrg({ org: scope }) : await octokit.actions.createRegistrationTokenForRepo({ owner, repo });
  const runner = await ProtocolRunner.register(emu.url, t.data.token, { url: emu.webUrl(scope), name, labels });
  expect(await runner.connect()).toBe(201);
  return runner;
}

describe.each(["repo", "org"] as const)("%s-scope runner endpoints", (kind) => {
  it("mint registration and remove tokens: 201, 29 upper-case characters, one hour", async () => {
    const api = scopeApi(kind);
    for (const res of [await api.regToken(), await api.removeToken()]) {
      expect(res.status).toBe(201);
      expect(res.data.token).toMatch(/^[A-Z0-9]{29}$/);
      const ttl = Date.parse(res.data.expires_at) - Date.now();
      expect(ttl).toBeGreaterThan(59 * 60 * 1000);
      expect(ttl).toBeLessThanOrEqual(60 * 60 * 1000);
    }
  });

  it("generate-jitconfig registers an offline ephemeral runner and returns the documented file bundle", async () => {
    const api = scopeApi(kind);
    const res = await api.jit({ name: `${kind}-jit-1`, runner_group_id: 1, labels: ["lk-pool-a", "gpu"], work_folder: "_w" });
    expect(res.status).toBe(201);
    expect(res.data.runner).toMatchObject({ name: `${kind}-jit-1`, status: "offline", os: "unknown", busy: false, ephemeral: true });
    expect(res.data.runner.labels.map((l) => [l.name, l.type])).toEqual([
      ["lk-pool-a", "custom"],
      ["gpu", "custom"],
    ]);
    const files = JSON.parse(Buffer.from(res.data.encoded_jit_config, "base64").toString()) as Record<string, string>;
    expect(Object.keys(files).sort()).toEqual([".credentials", ".credentials_rsaparams", ".runner"]);
    const decode = (k: string): unknown => JSON.parse(Buffer.from(files[k] as string, "base64").toString());
    expect(decode(".runner")).toEqual({
      agentId: res.data.runner.id,
      agentName: `${kind}-jit-1`,
      poolId: 1,
      poolName: "Default",
      serverUrl: `${emu.url}/_runner`,
      gitHubUrl: emu.webUrl(api.web),
      workFolder: "_w",
      ephemeral: true,
    });
    const creds = decode(".credentials") as { scheme: string; data: { clientId: string; authorizationUrl: string; token: string } };
    expect(creds).toMatchObject({ scheme: "OAuth", data: { clientId: String(res.data.runner.id), authorizationUrl: `${emu.url}/_runner` } });
    expect(decode(".credentials_rsaparams")).toEqual({});
    // The credential in the bundle opens a session: the runner goes online and reports its OS.
    const runner = new ProtocolRunner(emu.url, res.data.runner.id, creds.data.token);
    expect(await runner.connect()).toBe(201);
    expect((await api.get(res.data.runner.id)).data).toMatchObject({ status: "online", os: "Linux", version: "2.336.0" });
    expect((await runner.disconnect()).status).toBe(204);
    expect((await api.get(res.data.runner.id)).data.status).toBe("offline");
  });

  it("generate-jitconfig: 409 on a duplicate name, 422 on a missing group or empty labels, 404 on an unknown group", async () => {
    const api = scopeApi(kind);
    await api.jit({ name: `${kind}-dup`, runner_group_id: 1, labels: ["x"] });
    expect(await statusOf(api.jit({ name: `${kind}-dup`, runner_group_id: 1, labels: ["x"] }))).toBe(409);
    expect(await statusOf(api.jit({ name: `${KIND_NAME(kind)}-DUP`, runner_group_id: 1, labels: ["x"] }))).toBe(409);
    const missing = await errorOf(api.jit({ name: `${kind}-nogroup`, labels: ["x"] } as never));
    expect(missing.status).toBe(422);
    expect((missing.data as { message: string }).message).toContain("runner_group_id");
    expect(await statusOf(api.jit({ name: `${kind}-nolabels`, runner_group_id: 1, labels: [] }))).toBe(422);
    expect(await statusOf(api.jit({ name: `${kind}-badgroup`, runner_group_id: 4242, labels: ["x"] }))).toBe(404);
    // Nothing was registered by the refused calls.
    expect((await api.list({ name: `${kind}-nogroup` })).data.total_count).toBe(0);
  });

  it("lists with exactly {total_count, runners}, filters by name, gets, and deletes (204, then 404)", async () => {
    const api = scopeApi(kind);
    const made = await api.jit({ name: `${kind}-listed`, runner_group_id: 1, labels: ["a"] });
    const all = await api.list({ per_page: 100 });
    expect(Object.keys(all.data)).toEqual(["total_count", "runners"]);
    expect(all.data.runners.some((r) => r.id === made.data.runner.id)).toBe(true);
    const filtered = await api.list({ name: `${kind}-listed` });
    expect(filtered.data.total_count).toBe(1);
    expect(filtered.data.runners[0]?.id).toBe(made.data.runner.id);
    if (kind === "org") expect(filtered.data.runners[0]?.runner_group_id).toBe(1);
    expect((await api.get(made.data.runner.id)).data.name).toBe(`${kind}-listed`);
    expect((await api.del(made.data.runner.id)).status).toBe(204);
    expect(await statusOf(api.get(made.data.runner.id))).toBe(404);
    expect(await statusOf(api.del(made.data.runner.id))).toBe(404);
  });

  it("label endpoints: full lists, case-insensitive set, read-only vs custom, and GitHub's status codes", async () => {
    const api = scopeApi(kind);
    const runner = await protocolRunner(api.web, `${kind}-labels`, ["gpu"]);
    const id = runner.agentId;
    const names = (l: { labels: { name: string; type?: string }[] }) => l.labels.map((x) => `${x.name}:${x.type}`);
    const listed = await api.labels(id);
    expect(Object.keys(listed.data)).toEqual(["total_count", "labels"]);
    expect(names(listed.data)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only", "gpu:custom"]);
    const added = await api.addLabels(id, ["GPU", "fast", "self-hosted"]);
    expect(added.status).toBe(200);
    expect(names(added.data)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only", "gpu:custom", "fast:custom"]);
    expect(added.data.total_count).toBe(5);
    const set = await api.setLabels(id, ["blue", "green"]);
    expect(names(set.data)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only", "blue:custom", "green:custom"]);
    const removed = await api.removeOne(id, "BLUE");
    expect(names(removed.data)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only", "green:custom"]);
    expect(await statusOf(api.removeOne(id, "absent"))).toBe(404);
    expect(await statusOf(api.removeOne(id, "Linux"))).toBe(422);
    expect(await statusOf(api.addLabels(id, []))).toBe(422);
    expect(await statusOf(api.setLabels(id, ["ok", ""]))).toBe(422);
    const cleared = await api.removeAll(id);
    expect(names(cleared.data)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only"]);
    expect((await api.setLabels(id, [])).data.total_count).toBe(3);
    // Every label endpoint answers 404 for an unknown runner.
    const calls = [
      () => api.labels(999_999),
      () => api.addLabels(999_999, ["a"]),
      () => api.setLabels(999_999, ["a"]),
      () => api.removeAll(999_999),
      () => api.removeOne(999_999, "a"),
    ];
    for (const call of calls) expect(await statusOf(call())).toBe(404);
    // Label ids are stable per name across runners.
    const other = await api.jit({ name: `${kind}-labels-2`, runner_group_id: 1, labels: ["gpu"] });
    expect(other.data.runner.labels[0]?.id).toBe(listed.data.labels[3]?.id);
    await runner.disconnect();
  });

  it("refuses to delete a busy runner with GitHub's 422 body, and deletes it once idle", async () => {
    const api = scopeApi(kind);
    const runner = await protocolRunner(api.web, `${kind}-busy`, [`busy-${kind}`]);
    const { id: jobId } = await emu.control.createJob("acme/api", { labels: [`busy-${kind}`] });
    const job = await runner.nextJob();
    expect(job.id).toBe(jobId);
    expect((await api.get(runner.agentId)).data.busy).toBe(true);
    const refused = await errorOf(api.del(runner.agentId));
    expect(refused.status).toBe(422);
    expect((refused.data as { message: string }).message).toBe(`Bad request - Runner "${kind}-busy" is still running a job"`);
    expect((await runner.started(job.id)).status).toBe(204);
    expect((await runner.completed(job.id, "success")).status).toBe(204);
    expect((await api.get(runner.agentId)).data.busy).toBe(false);
    expect((await api.del(runner.agentId)).status).toBe(204);
    // The deleted registration's next poll learns it is gone.
    expect((await runner.poll(100)).status).toBe(404);
  });

  it("lists runner downloads as a bare array", async () => {
    const res = await scopeApi(kind).downloads();
    expect(Array.isArray(res.data)).toBe(true);
    expect(res.data.find((d) => d.os === "linux" && d.architecture === "x64")?.filename).toBe("actions-runner-linux-x64-2.336.0.tar.gz");
  });
});

function KIND_NAME(kind: string): string {
  return kind.toUpperCase();
}

describe("pagination", () => {
  it("octokit.paginate walks 250 runners over three pages of 100, following Link headers", async () => {
    for (let i = 0; i < 250; i++) {
      await octokit.actions.generateRunnerJitconfigForRepo({ owner: "acme", repo: "web", name: `p-${String(i).padStart(3, "0")}`, runner_group_id: 1, labels: ["p"] });
    }
    const all = await octokit.paginate(octokit.actions.listSelfHostedRunnersForRepo, { owner: "acme", repo: "web", per_page: 100 });
    expect(all).toHaveLength(250);
    expect(new Set(all.map((r) => r.id)).size).toBe(250);
    expect(all.map((r) => r.name)).toEqual([...all.map((r) => r.name)].sort());

    const links = async (page: number): Promise<Record<string, number>> => {
      const res = await octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "web", per_page: 100, page });
      const out: Record<string, number> = {};
      for (const m of (res.headers.link ?? "").matchAll(/<([^>]+)>; rel="(\w+)"/g)) {
        const u = new URL(m[1] as string);
        expect(u.origin + u.pathname).toBe(`${emu.apiUrl}/repos/acme/web/actions/runners`);
        expect(u.searchParams.get("per_page")).toBe("100");
        out[m[2] as string] = Number(u.searchParams.get("page"));
      }
      return out;
    };
    expect(await links(1)).toEqual({ next: 2, last: 3 });
    expect(await links(2)).toEqual({ prev: 1, next: 3, last: 3, first: 1 });
    expect(await links(3)).toEqual({ prev: 2, first: 1 });

    const defaults = await octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "web" });
    expect(defaults.data.runners).toHaveLength(30);
    expect(defaults.data.total_count).toBe(250);
    const clamped = await octokit.request("GET /repos/{owner}/{repo}/actions/runners", { owner: "acme", repo: "web", per_page: 500 });
    expect(clamped.data.runners).toHaveLength(100);
    const single = await octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "web", name: "p-007" });
    expect(single.headers.link).toBeUndefined();
  });
});

describe("runner groups", () => {
  it("Default group 1, create/get/update/delete, runner membership and repository access", async () => {
    const a = octokit.actions;
    // @octokit/rest 22 has no named methods for runner groups (its api.github.com flavour dropped them),
    // so these go through octokit.request with the documented routes.
    const rq = octokit.request;
    const listed = await rq("GET /orgs/{org}/actions/runner-groups", { org: "acme" });
    expect(Object.keys(listed.data)).toEqual(["total_count", "runner_groups"]);
    expect(listed.data.runner_groups[0]).toMatchObject({ id: 1, name: "Default", visibility: "all", default: true });

    const r1 = await a.generateRunnerJitconfigForOrg({ org: "acme", name: "g-r1", runner_group_id: 1, labels: ["g"] });
    const r2 = await a.generateRunnerJitconfigForOrg({ org: "acme", name: "g-r2", runner_group_id: 1, labels: ["g"] });
    const created = await rq("POST /orgs/{org}/actions/runner-groups", { org: "acme", name: "builders", visibility: "selected", selected_repository_ids: [], runners: [r1.data.runner.id] });
    expect(created.status).toBe(201);
    const gid = created.data.id;
    expect(created.data).toMatchObject({ name: "builders", visibility: "selected", default: false });
    expect(await statusOf(rq("POST /orgs/{org}/actions/runner-groups", { org: "acme", name: "Builders" }))).toBe(409);
    expect((await a.getSelfHostedRunnerForOrg({ org: "acme", runner_id: r1.data.runner.id })).data.runner_group_id).toBe(gid);
    expect((await rq("GET /orgs/{org}/actions/runner-groups/{runner_group_id}", { org: "acme", runner_group_id: gid })).data.name).toBe("builders");
    expect((await rq("PATCH /orgs/{org}/actions/runner-groups/{runner_group_id}", { org: "acme", runner_group_id: gid, name: "builders-2" })).data.name).toBe("builders-2");

    expect((await rq("PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/runners", { org: "acme", runner_group_id: gid, runners: [r2.data.runner.id] })).status).toBe(204);
    const inGroup = await rq("GET /orgs/{org}/actions/runner-groups/{runner_group_id}/runners", { org: "acme", runner_group_id: gid });
    expect(inGroup.data.runners.map((r) => r.id)).toEqual([r2.data.runner.id]);
    expect((await rq("PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/runners/{runner_id}", { org: "acme", runner_group_id: gid, runner_id: r1.data.runner.id })).status).toBe(204);
    expect((await rq("DELETE /orgs/{org}/actions/runner-groups/{runner_group_id}/runners/{runner_id}", { org: "acme", runner_group_id: gid, runner_id: r2.data.runner.id })).status).toBe(204);
    expect((await a.getSelfHostedRunnerForOrg({ org: "acme", runner_id: r2.data.runner.id })).data.runner_group_id).toBe(1);

    // Repository ids come from the repository object of a workflow run (the emulator serves no repos API).
    const run = await emu.control.createJob("acme/api", { labels: ["nobody-has-this"] });
    const repoId = (await a.getWorkflowRun({ owner: "acme", repo: "api", run_id: run.runId })).data.repository.id;
    expect((await rq("PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories", { org: "acme", runner_group_id: gid, selected_repository_ids: [] })).status).toBe(204);
    expect((await rq("PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories/{repository_id}", { org: "acme", runner_group_id: gid, repository_id: repoId })).status).toBe(204);
    const access = await rq("GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories", { org: "acme", runner_group_id: gid });
    expect(access.data.repositories.map((r) => r.full_name)).toEqual(["acme/api"]);
    const visible = await rq("GET /orgs/{org}/actions/runner-groups", { org: "acme", visible_to_repository: "web" });
    expect(visible.data.runner_groups.map((g) => g.id)).toEqual([1]);
    expect((await rq("DELETE /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories/{repository_id}", { org: "acme", runner_group_id: gid, repository_id: repoId })).status).toBe(204);

    expect((await rq("DELETE /orgs/{org}/actions/runner-groups/{runner_group_id}", { org: "acme", runner_group_id: gid })).status).toBe(204);
    expect(await statusOf(rq("GET /orgs/{org}/actions/runner-groups/{runner_group_id}", { org: "acme", runner_group_id: gid }))).toBe(404);
    expect((await a.getSelfHostedRunnerForOrg({ org: "acme", runner_id: r1.data.runner.id })).data.runner_group_id).toBe(1);
    await emu.control.cancelJob(run.id);
  });
});

describe("workflow runs and jobs", () => {
  it("shows a queued job, then its runner and outcome, through runs/jobs endpoints", async () => {
    const a = octokit.actions;
    const runner = await protocolRunner("solo/tool", "runs-runner", ["runs-label"]);
    const { id, runId } = await emu.control.createJob("solo/tool", { labels: ["runs-label"], name: "build" });
    // Not picked up until the runner polls.
    const queued = await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", status: "queued" });
    expect(Object.keys(queued.data)).toEqual(["total_count", "workflow_runs"]);
    expect(queued.data.workflow_runs.map((r) => r.id)).toEqual([runId]);
    const jobs = await a.listJobsForWorkflowRun({ owner: "solo", repo: "tool", run_id: runId });
    expect(Object.keys(jobs.data)).toEqual(["total_count", "jobs"]);
    expect(jobs.data.jobs[0]).toMatchObject({ id, status: "queued", conclusion: null, runner_name: null, labels: ["runs-label"], name: "build" });

    const job = await runner.nextJob();
    await runner.started(job.id);
    const running = await a.getJobForWorkflowRun({ owner: "solo", repo: "tool", job_id: id });
    expect(running.data).toMatchObject({ status: "in_progress", runner_name: "runs-runner", runner_id: runner.agentId });
    expect((await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", status: "in_progress" })).data.total_count).toBe(1);
    await runner.completed(job.id, "failure");
    const done = await a.getWorkflowRun({ owner: "solo", repo: "tool", run_id: runId });
    expect(done.data).toMatchObject({ status: "completed", conclusion: "failure" });
    expect((await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", status: "failure" })).data.total_count).toBe(1);
    expect((await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", status: "queued" })).data.total_count).toBe(0);
    expect(await statusOf(a.getJobForWorkflowRun({ owner: "acme", repo: "api", job_id: id }))).toBe(404);
    expect(await statusOf(a.getWorkflowRun({ owner: "solo", repo: "tool", run_id: 999_999 }))).toBe(404);
    await runner.disconnect();
  });
});

describe("workflow dispatch", () => {
  it("204 No Content; one workflow_dispatch run on the ref whose job runs on the labels the inputs name", async () => {
    const a = octokit.actions;
    const id = await emu.control.defineWorkflow("solo/tool", "smoke.yml", { runsOn: ["${{ inputs.runner_label }}"], durationMs: 0, name: "smoke" });
    const runner = await protocolRunner("solo/tool", "dispatch-runner", ["smoke-abc"]);
    const res = await a.createWorkflowDispatch({ owner: "solo", repo: "tool", workflow_id: "smoke.yml", ref: "refs/heads/release", inputs: { runner_label: "smoke-abc" } });
    expect(res.status).toBe(204);
    expect(res.data).toBe("");
    const runs = (await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", event: "workflow_dispatch" })).data.workflow_runs;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ event: "workflow_dispatch", head_branch: "release", path: ".github/workflows/smoke.yml", workflow_id: id, name: "smoke" });
    const jobs = (await a.listJobsForWorkflowRun({ owner: "solo", repo: "tool", run_id: runs[0]?.id ?? 0 })).data.jobs;
    expect(jobs[0]).toMatchObject({ status: "queued", labels: ["smoke-abc"] });
    const job = await runner.nextJob();
    expect(job.id).toBe(jobs[0]?.id);
    await runner.started(job.id);
    await runner.completed(job.id, "success");
    // The numeric id names the same workflow; the push runs are not workflow_dispatch runs.
    expect((await a.createWorkflowDispatch({ owner: "solo", repo: "tool", workflow_id: id, ref: "main", inputs: { runner_label: "x" } })).status).toBe(204);
    expect((await a.listWorkflowRunsForRepo({ owner: "solo", repo: "tool", event: "workflow_dispatch" })).data.total_count).toBe(2);
    await runner.disconnect();
  });

  it("404 for an unknown workflow; 422 without a ref, with a missing, unexpected or non-string input", async () => {
    const url = `${emu.apiUrl}/repos/solo/tool/actions/workflows`;
    await emu.control.defineWorkflow("solo/tool", "needs.yml", { runsOn: ["linux", "${{ inputs.label }}"] });
    const post = (wf: string, body: unknown) => fetch(`${url}/${wf}/dispatches`, { method: "POST", headers: { authorization: "token t-admin", "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("nope.yml", { ref: "main" })).status).toBe(404);
    expect((await post("needs.yml", {})).status).toBe(422);
    const missing = await post("needs.yml", { ref: "main" });
    expect(missing.status).toBe(422);
    expect(((await missing.json()) as { message: string }).message).toBe("Required input 'label' not provided");
    const unexpected = await post("needs.yml", { ref: "main", inputs: { label: "a", other: "b" } });
    expect(unexpected.status).toBe(422);
    expect(((await unexpected.json()) as { message: string }).message).toBe('Unexpected inputs provided: ["other"]');
    expect((await post("needs.yml", { ref: "main", inputs: { label: 3 } })).status).toBe(422);
    expect((await post("needs.yml", { ref: "main", inputs: [] })).status).toBe(422);
    const reader = await fetch(`${url}/needs.yml/dispatches`, { method: "POST", headers: { authorization: `token ${READ_TOKEN}` }, body: JSON.stringify({ ref: "main", inputs: { label: "a" } }) });
    expect(reader.status).toBe(403);
  });
});

describe("authentication and scopes", () => {
  it("401 without or with bad credentials; token, Bearer and Basic schemes; 404 unknown scopes; 403 for a read-only token", async () => {
    const url = `${emu.apiUrl}/repos/acme/api/actions/runners`;
    const none = await checkedFetch(log, "GET", url);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ message: "Requires authentication" });
    const bad = await checkedFetch(log, "GET", url, { headers: { authorization: "token nope" } });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ message: "Bad credentials" });
    expect((await checkedFetch(log, "GET", url, { headers: { authorization: "Bearer t-admin" } })).status).toBe(200);
    expect((await checkedFetch(log, "GET", url, { headers: { authorization: "token t-admin" } })).status).toBe(200);
    const basic = `Basic ${Buffer.from("github:t-admin").toString("base64")}`;
    expect((await checkedFetch(log, "POST", `${emu.apiUrl}/repos/acme/api/actions/runners/registration-token`, { headers: { authorization: basic } })).status).toBe(201);

    expect(await statusOf(octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "nope" }))).toBe(404);
    expect(await statusOf(octokit.actions.listSelfHostedRunnersForOrg({ org: "solo" }))).toBe(404);
    const orgRunner = await octokit.actions.generateRunnerJitconfigForOrg({ org: "acme", name: "scoped", runner_group_id: 1, labels: ["s"] });
    expect(await statusOf(octokit.actions.getSelfHostedRunnerForRepo({ owner: "acme", repo: "api", runner_id: orgRunner.data.runner.id }))).toBe(404);

    const reader = checkedOctokit(emu, log, READ_TOKEN);
    // Like GitHub, runner reads need admin rights too (the realism suite covers every runner endpoint).
    expect(await statusOf(reader.actions.listSelfHostedRunnersForOrg({ org: "acme" }))).toBe(403);
    expect((await reader.actions.listWorkflowRunsForRepo({ owner: "acme", repo: "api" })).status).toBe(200);
    const denied = await errorOf(reader.actions.createRegistrationTokenForRepo({ owner: "acme", repo: "api" }));
    expect(denied.status).toBe(403);
    expect((denied.data as { message: string }).message).toBe("Resource not accessible by personal access token");
    expect(await statusOf(reader.actions.deleteSelfHostedRunnerFromOrg({ org: "acme", runner_id: orgRunner.data.runner.id }))).toBe(403);

    const unknownRoute = await fetch(`${emu.apiUrl}/repos/acme/api/actions/nothing`, { headers: { authorization: "token t-admin" } });
    expect(unknownRoute.status).toBe(404);
    // Web URLs of served scopes exist (they are what runners are configured with).
    expect((await fetch(emu.webUrl("acme/api"))).status).toBe(200);
    expect((await fetch(emu.webUrl("acme"))).status).toBe(200);
    expect((await fetch(emu.webUrl("acme/nope"))).status).toBe(404);
  });
});

describe("coverage", () => {
  it("exercised every documented status of every served operation", () => {
    const expected = [
      "actions/list-self-hosted-runners-for-repo 200",
      "actions/list-self-hosted-runners-for-org 200",
      "actions/list-runner-applications-for-repo 200",
      "actions/list-runner-applications-for-org 200",
      "actions/create-registration-token-for-repo 201",
      "actions/create-registration-token-for-org 201",
      "actions/create-remove-token-for-repo 201",
      "actions/create-remove-token-for-org 201",
      ...["201", "404", "409", "422"].flatMap((s) => [`actions/generate-runner-jitconfig-for-repo ${s}`, `actions/generate-runner-jitconfig-for-org ${s}`]),
      "actions/get-self-hosted-runner-for-repo 200",
      "actions/get-self-hosted-runner-for-org 200",
      ...["204", "422"].flatMap((s) => [`actions/delete-self-hosted-runner-from-repo ${s}`, `actions/delete-self-hosted-runner-from-org ${s}`]),
      ...["200", "404"].flatMap((s) => ["repo", "org"].flatMap((k) => [
        `actions/list-labels-for-self-hosted-runner-for-${k} ${s}`,
        `actions/remove-all-custom-labels-from-self-hosted-runner-for-${k} ${s}`,
      ])),
      ...["200", "404", "422"].flatMap((s) => ["repo", "org"].flatMap((k) => [
        `actions/add-custom-labels-to-self-hosted-runner-for-${k} ${s}`,
        `actions/set-custom-labels-for-self-hosted-runner-for-${k} ${s}`,
        `actions/remove-custom-label-from-self-hosted-runner-for-${k} ${s}`,
      ])),
      "actions/list-self-hosted-runner-groups-for-org 200",
      "actions/create-self-hosted-runner-group-for-org 201",
      "actions/get-self-hosted-runner-group-for-org 200",
      "actions/update-self-hosted-runner-group-for-org 200",
      "actions/delete-self-hosted-runner-group-from-org 204",
      "actions/list-self-hosted-runners-in-group-for-org 200",
      "actions/set-self-hosted-runners-in-group-for-org 204",
      "actions/add-self-hosted-runner-to-group-for-org 204",
      "actions/remove-self-hosted-runner-from-group-for-org 204",
      "actions/list-repo-access-to-self-hosted-runner-group-in-org 200",
      "actions/set-repo-access-to-self-hosted-runner-group-in-org 204",
      "actions/add-repo-access-to-self-hosted-runner-group-in-org 204",
      "actions/remove-repo-access-to-self-hosted-runner-group-in-org 204",
      "actions/list-workflow-runs-for-repo 200",
      "actions/get-workflow-run 200",
      "actions/list-jobs-for-workflow-run 200",
      "actions/get-job-for-workflow-run 200",
      "actions/create-workflow-dispatch 204",
    ];
    expect(expected.filter((k) => !log.seen.has(k))).toEqual([]);
  });
});
