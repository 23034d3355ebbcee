/**
 * Rate limits, ETags and injected faults of the emulator's REST API: `x-ratelimit-*` headers, one point per
 * request and per token, 304 answers that spend nothing, primary and secondary exhaustion (403/429,
 * `retry-after`), injected 5xx and latency, the lagging `busy` flag, stats and reset.
 */
import type { Octokit } from "@octokit/rest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OpenApiValidator, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { checkedFetch, checkedOctokit, ConformanceLog, errorOf, ProtocolRunner } from "./github-emulator-fixtures.js";

let validator: OpenApiValidator;
let emu: GitHubEmulator;
let log: ConformanceLog;
let octokit: Octokit;
const emulators: GitHubEmulator[] = [];

const repo = { owner: "acme", repo: "api" };
const auth = { authorization: "token t-admin" };

beforeAll(async () => {
  validator = OpenApiValidator.load();
  emu = await startGitHubEmulator({ token: "t-admin", repos: ["acme/api"], orgs: ["acme"], offlineAfterMs: 30_000 });
  emulators.push(emu);
  log = new ConformanceLog(validator, emu.apiUrl);
  octokit = checkedOctokit(emu, log);
});

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

afterEach(async () => {
  await emu.control.reset();
  expect(log.violations.splice(0)).toEqual([]);
});

const runnersUrl = (): string => `${emu.apiUrl}/repos/acme/api/actions/runners`;
const header = (h: Headers, name: string): number => Number(h.get(name));

describe("primary rate limit", () => {
  it("sends x-ratelimit-* on every response and spends one point per request, per token", async () => {
    const first = await checkedFetch(log, "GET", runnersUrl(), { headers: auth });
    expect(first.headers.get("x-ratelimit-limit")).toBe("5000");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("4999");
    expect(first.headers.get("x-ratelimit-used")).toBe("1");
    expect(first.headers.get("x-ratelimit-resource")).toBe("core");
    const reset = header(first.headers, "x-ratelimit-reset");
    expect(reset).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3600);
    const second = await checkedFetch(log, "POST", `${runnersUrl()}/registration-token`, { headers: auth });
    expect(second.headers.get("x-ratelimit-remaining")).toBe("4998");
    expect(header(second.headers, "x-ratelimit-reset")).toBe(reset);

    const other = await emu.control.createToken("ci");
    const theirs = await checkedFetch(log, "GET", runnersUrl(), { headers: { authorization: `Bearer ${other}` } });
    expect(theirs.headers.get("x-ratelimit-remaining")).toBe("4999");
    const stats = await emu.control.stats();
    expect(stats.byToken.admin).toMatchObject({ calls: 2, points: 2 });
    expect(stats.byToken.ci).toMatchObject({ calls: 1, points: 1 });
    expect(stats.byRoute["GET /repos/{owner}/{repo}/actions/runners"]).toMatchObject({ calls: 2, points: 2 });
    expect(stats.total.points).toBe(3);
    // Stats name tokens; they never contain token values.
    expect(JSON.stringify(stats)).not.toContain(other);
  });

  it("refuses with 403 and x-ratelimit-remaining 0 once the hour's budget is spent, until the window resets", async () => {
    let now = Date.now();
    const small = await startGitHubEmulator({ token: "t-small", repos: ["acme/api"], rateLimitPerHour: 3, clock: { now: () => now } });
    emulators.push(small);
    const smallLog = new ConformanceLog(validator, small.apiUrl);
    const url = `${small.apiUrl}/repos/acme/api/actions/runners`;
    const h = { authorization: "token t-small" };
    for (const remaining of ["2", "1", "0"]) {
      const res = await checkedFetch(smallLog, "GET", url, { headers: h });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-remaining")).toBe(remaining);
    }
    const refused = await checkedFetch(smallLog, "GET", url, { headers: h });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");
    expect((refused.body as { message: string }).message).toMatch(/^API rate limit exceeded/);
    // A conditional request does not get around an exhausted budget.
    expect((await checkedFetch(smallLog, "GET", url, { headers: { ...h, "if-none-match": "*" } })).status).toBe(403);
    expect((await small.control.stats()).byToken.admin).toMatchObject({ calls: 5, points: 3, rateLimited: 2 });
    now += 3600 * 1000;
    const fresh = await checkedFetch(smallLog, "GET", url, { headers: h });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("x-ratelimit-remaining")).toBe("2");
    expect(smallLog.violations).toEqual([]);
  });

  it("injected exhaustion: `remaining` requests left, then 403 (or 429) with the injected reset; clearing restores the budget", async () => {
    await emu.control.setFaults({ rateLimit: { remaining: 2, resetAfterMs: 90_000 } });
    const a = await octokit.actions.listSelfHostedRunnersForRepo(repo);
    expect(a.headers["x-ratelimit-remaining"]).toBe("1");
    const reset = Number(a.headers["x-ratelimit-reset"]);
    expect(reset).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 80);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 90);
    expect((await octokit.actions.listSelfHostedRunnersForRepo(repo)).headers["x-ratelimit-remaining"]).toBe("0");
    const refused = await errorOf(octokit.actions.listSelfHostedRunnersForRepo(repo));
    expect(refused.status).toBe(403);
    expect(refused.headers["x-ratelimit-remaining"]).toBe("0");
    expect(Number(refused.headers["x-ratelimit-reset"])).toBe(reset);
    // A token first seen while the fault is in force is exhausted too.
    const late = await emu.control.createToken("late");
    await emu.control.setFaults({ rateLimit: { remaining: 0, status: 429 } });
    const late429 = await checkedFetch(log, "GET", runnersUrl(), { headers: { authorization: `token ${late}` } });
    expect(late429.status).toBe(429);
    expect(late429.headers.get("x-ratelimit-remaining")).toBe("0");
    await emu.control.clearFaults();
    const back = await octokit.actions.listSelfHostedRunnersForRepo(repo);
    expect(back.headers["x-ratelimit-remaining"]).toBe("4999");
  });
});

describe("secondary rate limit", () => {
  it("refuses every request with retry-after and GitHub's message while injected, spending nothing", async () => {
    await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 7 } });
    const refused = await errorOf(octokit.actions.createRegistrationTokenForRepo(repo));
    expect(refused.status).toBe(403);
    expect(refused.headers["retry-after"]).toBe("7");
    expect((refused.data as { message: string }).message).toContain("secondary rate limit");
    expect(refused.headers["x-ratelimit-remaining"]).toBe("5000");
    await emu.control.setFaults({ rateLimit: { secondary: true, status: 429 } });
    const r429 = await errorOf(octokit.actions.listSelfHostedRunnersForRepo(repo));
    expect(r429.status).toBe(429);
    expect(r429.headers["retry-after"]).toBe("60");
    expect((await emu.control.stats()).byToken.admin).toMatchObject({ calls: 2, points: 0, rateLimited: 2 });
    await emu.control.clearFaults();
    expect((await octokit.actions.listSelfHostedRunnersForRepo(repo)).status).toBe(200);
  });
});

describe("ETags", () => {
  it("answers If-None-Match with 304 without spending, and changes the ETag whenever the body changes", async () => {
    const jit = await octokit.actions.generateRunnerJitconfigForRepo({ ...repo, name: "etag-1", runner_group_id: 1, labels: ["e"] });
    const first = await checkedFetch(log, "GET", runnersUrl(), { headers: auth });
    const etag = first.headers.get("etag") ?? "";
    expect(etag).toMatch(/^W\/"[0-9a-f]+"$/);
    const remaining = header(first.headers, "x-ratelimit-remaining");

    const cached = await checkedFetch(log, "GET", runnersUrl(), { headers: { ...auth, "if-none-match": etag } });
    expect(cached.status).toBe(304);
    expect(cached.body).toBeUndefined();
    expect(cached.headers.get("etag")).toBe(etag);
    expect(header(cached.headers, "x-ratelimit-remaining")).toBe(remaining);
    // Through Octokit as well (it reports 304 as an error carrying status 304).
    const viaOctokit = await errorOf(octokit.actions.listSelfHostedRunnersForRepo({ ...repo, headers: { "if-none-match": etag } }));
    expect(viaOctokit.status).toBe(304);
    expect(header((await checkedFetch(log, "GET", runnersUrl(), { headers: { ...auth, "if-none-match": etag } })).headers, "x-ratelimit-remaining")).toBe(remaining);

    await octokit.actions.addCustomLabelsToSelfHostedRunnerForRepo({ ...repo, runner_id: jit.data.runner.id, labels: ["more"] });
    const changed = await checkedFetch(log, "GET", runnersUrl(), { headers: { ...auth, "if-none-match": etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);

    // Status changes (online, then busy) change the ETag of the single-runner resource too.
    const one = `${runnersUrl()}/${jit.data.runner.id}`;
    const offlineTag = (await checkedFetch(log, "GET", one, { headers: auth })).headers.get("etag") ?? "";
    const files = JSON.parse(Buffer.from(jit.data.encoded_jit_config, "base64").toString()) as Record<string, string>;
    const cred = (JSON.parse(Buffer.from(files[".credentials"] as string, "base64").toString()) as { data: { token: string } }).data.token;
    const runner = new ProtocolRunner(emu.url, jit.data.runner.id, cred);
    await runner.connect();
    const online = await checkedFetch(log, "GET", one, { headers: { ...auth, "if-none-match": offlineTag } });
    expect(online.status).toBe(200);
    const onlineTag = online.headers.get("etag") ?? "";
    await emu.control.createJob("acme/api", { labels: ["e"] });
    await runner.nextJob();
    const busy = await checkedFetch(log, "GET", one, { headers: { ...auth, "if-none-match": onlineTag } });
    expect(busy.status).toBe(200);
    expect((busy.body as { busy: boolean }).busy).toBe(true);
    const stats = await emu.control.stats();
    expect(stats.byToken.admin?.notModified).toBe(3);
    expect(stats.byToken.admin?.points).toBe((stats.byToken.admin?.calls ?? 0) - 3);
  });

  it("GET /rate_limit reports the budget without spending it", async () => {
    await octokit.actions.listSelfHostedRunnersForRepo(repo);
    const a = await octokit.rateLimit.get();
    expect(a.data.resources.core).toMatchObject({ limit: 5000, used: 1, remaining: 4999 });
    const b = await octokit.rateLimit.get();
    expect(b.data.rate.remaining).toBe(4999);
  });
});

describe("injected faults", () => {
  it("5xx at the injected rate without spending; latency delays responses", async () => {
    await emu.control.setFaults({ errorRate: 1, errorStatus: 503 });
    const failed = await checkedFetch(log, "GET", runnersUrl(), { headers: auth });
    expect(failed.status).toBe(503);
    expect(failed.headers.get("x-ratelimit-remaining")).toBe("5000");
    expect((await emu.control.stats()).total.injectedErrors).toBe(1);
    await emu.control.setFaults({ errorRate: 0, latencyMs: 150 });
    expect(await emu.control.getFaults()).toEqual({ errorRate: 0, errorStatus: 503, latencyMs: 150 });
    const started = performance.now();
    expect((await checkedFetch(log, "GET", runnersUrl(), { headers: auth })).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    await emu.control.clearFaults();
    expect(await emu.control.getFaults()).toEqual({});
  });

  it("busyLagMs: REST shows busy false for a while after hand-out; deletion is still refused", async () => {
    await emu.control.setFaults({ busyLagMs: 60_000 });
    const t = await octokit.actions.createRegistrationTokenForRepo(repo);
    const runner = await ProtocolRunner.register(emu.url, t.data.token, { url: emu.webUrl("acme/api"), name: "laggy", labels: ["lag"] });
    await runner.connect();
    await emu.control.createJob("acme/api", { labels: ["lag"] });
    await runner.nextJob();
    expect((await octokit.actions.getSelfHostedRunnerForRepo({ ...repo, runner_id: runner.agentId })).data.busy).toBe(false);
    expect((await emu.control.listRunners()).find((r) => r.id === runner.agentId)?.busy).toBe(true);
    expect((await errorOf(octokit.actions.deleteSelfHostedRunnerFromRepo({ ...repo, runner_id: runner.agentId }))).status).toBe(422);
    await emu.control.setFaults({ busyLagMs: 0 });
    expect((await octokit.actions.getSelfHostedRunnerForRepo({ ...repo, runner_id: runner.agentId })).data.busy).toBe(true);
  });

  it("rejects malformed fault bodies with path: message", async () => {
    const res = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ rateLimit: { remaning: 1 } }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("rateLimit.remaning: unknown key");
    const res2 = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ errorRate: 2 }) });
    expect(res2.status).toBe(400);
  });
});

describe("reset", () => {
  it("forgets runners, jobs, faults and stats but keeps the served scopes", async () => {
    await octokit.actions.generateRunnerJitconfigForOrg({ org: "acme", name: "gone-after-reset", runner_group_id: 1, labels: ["x"] });
    await emu.control.createJob("acme/api", { labels: ["x"] });
    await emu.control.setFaults({ latencyMs: 1 });
    await emu.control.reset();
    expect(await emu.control.listRunners()).toEqual([]);
    expect(await emu.control.listJobs()).toEqual([]);
    expect(await emu.control.getFaults()).toEqual({});
    expect((await emu.control.stats()).total.calls).toBe(0);
    expect((await octokit.actions.listSelfHostedRunnersForOrg({ org: "acme" })).data.total_count).toBe(0);
  });
});
