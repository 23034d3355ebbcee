/**
 * OctokitGitHubClient against the real GitHub emulator over HTTP (GHES-style base URL `<url>/api/v3`):
 * pagination, conditional requests (304 spends no rate limit), throttling and retry on injected faults
 * (bounded), the rate-limit reserve for removals, error mapping, and secrets never leaking.
 */
import { inspect } from "node:util";
import { startGitHubEmulator, type GitHubEmulator } from "@lanekeeper/harness";
import { createLogger } from "@lanekeeper/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  GitHubApiError,
  GitHubForbiddenError,
  GitHubNotFoundError,
  GitHubRateLimitedError,
  GitHubRateLimitReserveError,
  OctokitGitHubClient,
  RedactedSecret,
  type OctokitGitHubClientOptions,
} from "../../packages/coordinator/src/index.js";

const BIG = "acme/big"; // 250 runners: three pages of 100
const SMALL = "acme/small";
const ORG = "acme-org";

let emu: GitHubEmulator;
let setupToken: string;

/** Registers a runner through the REST API with the setup token (its own rate-limit bucket). */
async function addRunner(scope: string, name: string, labels: string[]): Promise<number> {
  const path = scope.startsWith("org:") ? `/orgs/${scope.slice(4)}` : `/repos/${scope}`;
  const res = await fetch(`${emu.apiUrl}${path}/actions/runners/generate-jitconfig`, {
    method: "POST",
    headers: { authorization: `token ${setupToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name, runner_group_id: 1, labels }),
  });
  if (res.status !== 201) throw new Error(`setup: generate-jitconfig ${res.status}`);
  const body = (await res.json()) as { runner: { id: number } };
  return body.runner.id;
}

async function deleteRunnerAsSetup(scope: string, id: number): Promise<void> {
  const res = await fetch(`${emu.apiUrl}/repos/${scope}/actions/runners/${id}`, {
    method: "DELETE",
    headers: { authorization: `token ${setupToken}` },
  });
  if (res.status !== 204) throw new Error(`setup: delete ${res.status}`);
}

function client(extra: Partial<OctokitGitHubClientOptions> = {}): OctokitGitHubClient {
  return new OctokitGitHubClient({
    apiUrl: emu.apiUrl,
    credential: { kind: "token", token: new RedactedSecret(emu.token) },
    // Retry waits are scaled down: one "second" of retry-after or backoff is 5 ms here.
    retryBaseMs: 5,
    ...extra,
  });
}

async function adminStats(): Promise<{ calls: number; points: number; notModified: number; rateLimited: number; injectedErrors: number }> {
  const s = await emu.control.stats();
  return s.byToken.admin ?? { calls: 0, points: 0, notModified: 0, rateLimited: 0, injectedErrors: 0 };
}

beforeAll(async () => {
  emu = await startGitHubEmulator({ repos: [BIG, SMALL], orgs: [ORG] });
  setupToken = await emu.control.createToken("setup");
  for (let i = 0; i < 250; i++) await addRunner(BIG, `big-${String(i).padStart(3, "0")}`, ["lk-managed", `x${i % 7}`]);
  await addRunner(SMALL, "small-1", ["linux"]);
});

afterAll(async () => {
  await emu?.stop();
});

afterEach(async () => {
  await emu.control.clearFaults();
});

describe("listing runners", () => {
  it("reads every page and then answers from the ETag cache with 304s that spend no points", async () => {
    const c = client();
    const s0 = await adminStats();
    const first = await c.listRunners(BIG);
    expect(first.runners).toHaveLength(250);
    expect(new Set(first.runners.map((r) => r.id)).size).toBe(250);
    expect(first.requests).toBe(3);
    expect(first.notModified).toBe(false);
    expect(first.complete).toBe(true);
    expect(first.runners[0]?.labels.map((l) => l.name)).toContain("lk-managed");
    const s1 = await adminStats();
    expect(s1.points - s0.points).toBe(3);

    const second = await c.listRunners(BIG);
    expect(second.notModified).toBe(true);
    expect(second.requests).toBe(3);
    expect(second.runners.map((r) => r.id)).toEqual(first.runners.map((r) => r.id));
    const s2 = await adminStats();
    expect(s2.points - s1.points).toBe(0);
    expect(s2.notModified - s1.notModified).toBe(3);
    expect(s2.calls - s1.calls).toBe(3);

    const m = c.metrics();
    expect(m.requests).toBe(6);
    expect(m.notModified).toBe(3);
    expect(m.pointsSpent).toBe(3);
    expect(m.calls.listRunners).toBe(6);
    // The client's own accounting agrees with the server's x-ratelimit-used.
    const rl = c.rateLimit();
    expect(rl.limit).toBe(5000);
    expect(rl.used).toBe(s2.points);
    expect(rl.remaining).toBe(5000 - s2.points);
  });

  it("logs a 304 (a cache hit) at debug level, never as an error", async () => {
    const lines: { level: number; msg: string }[] = [];
    const destination = { write: (s: string): void => void lines.push(JSON.parse(s) as { level: number; msg: string }) };
    const c = client({ log: createLogger({ component: "test", level: "debug", destination }) });
    await c.listRunners(SMALL);
    expect((await c.listRunners(SMALL)).notModified).toBe(true);
    const notModified = lines.filter((l) => / - 304 with id /.test(l.msg));
    expect(notModified.length).toBeGreaterThan(0);
    expect(notModified.every((l) => l.level === 20)).toBe(true); // pino: 20 = debug
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it("pays only for the pages that changed, and sees the change", async () => {
    const c = client();
    await c.listRunners(SMALL);
    const id = await addRunner(SMALL, "small-2", ["linux"]);
    const s0 = await adminStats();
    const after = await c.listRunners(SMALL);
    expect(after.notModified).toBe(false);
    expect(after.runners.map((r) => r.id)).toContain(id);
    expect((await adminStats()).points - s0.points).toBe(1);
  });

  it("respects a smaller page size", async () => {
    const c = client({ perPage: 40 });
    const list = await c.listRunners(BIG);
    expect(list.requests).toBe(7);
    expect(list.runners).toHaveLength(250);
  });

  it("reports a listing as incomplete when registrations move between pages while it reads", async () => {
    const scope = "acme/shift";
    await emu.control.addRepo(scope);
    const ids: number[] = [];
    for (let i = 0; i < 150; i++) ids.push(await addRunner(scope, `shift-${i}`, ["a"]));
    let pages = 0;
    const c = client({
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        // After page 1 arrived, a runner on page 1 disappears: page 2 shifts and one runner is never seen.
        if (++pages === 1) await deleteRunnerAsSetup(scope, ids[0] ?? 0);
        return res;
      },
    });
    const list = await c.listRunners(scope);
    expect(list.complete).toBe(false);
    expect(list.runners.length).toBeLessThan(150);
    // The next listing is consistent again.
    expect((await c.listRunners(scope)).complete).toBe(true);
  });
});

describe("runner downloads listing", () => {
  it("is read once per TTL for every scope (GitHub's listing is the same everywhere), side-by-side reads share one request", async () => {
    let now = 1_000_000;
    const c = client({ clock: { now: () => now }, runnerDownloadsTtlMs: 60_000 });
    const s0 = await adminStats();
    const [a, b] = await Promise.all([c.listRunnerDownloads(BIG), c.listRunnerDownloads(SMALL)]);
    expect(a.length).toBeGreaterThan(0);
    expect(b).toEqual(a);
    for (let i = 0; i < 5; i++) expect(await c.listRunnerDownloads(i % 2 === 0 ? SMALL : `org:${ORG}`)).toEqual(a);
    const s1 = await adminStats();
    expect(s1.calls - s0.calls).toBe(1);
    expect(c.metrics().calls.listRunnerDownloads).toBe(1);

    // Past the TTL it asks again (a conditional read with the ETag of the scope read before: 304, no points).
    now += 60_000;
    expect(await c.listRunnerDownloads(BIG)).toEqual(a);
    const s2 = await adminStats();
    expect(s2.calls - s1.calls).toBe(1);
    expect(s2.points - s1.points).toBe(0);
  });

  it("asks every time with a TTL of 0", async () => {
    const c = client({ runnerDownloadsTtlMs: 0 });
    const s0 = await adminStats();
    await c.listRunnerDownloads(SMALL);
    await c.listRunnerDownloads(SMALL);
    expect((await adminStats()).calls - s0.calls).toBe(2);
  });
});

describe("runner operations", () => {
  it("gets, relabels and deletes a runner; 404s map to undefined, not-found and GitHubNotFoundError", async () => {
    const c = client();
    const id = await addRunner(SMALL, "ops-1", ["lk-managed", "linux"]);
    expect((await c.getRunner(SMALL, id))?.name).toBe("ops-1");
    expect(await c.getRunner(SMALL, 99_999_999)).toBeUndefined();

    const set = await c.setCustomLabels(SMALL, id, ["lk-managed", "lk-draining"]);
    expect(set.filter((l) => l.type === "custom").map((l) => l.name).sort()).toEqual(["lk-draining", "lk-managed"]);
    const added = await c.addLabels(SMALL, id, ["gpu"]);
    expect(added.map((l) => l.name)).toContain("gpu");
    const removed = await c.removeLabel(SMALL, id, "lk-draining");
    expect(removed.map((l) => l.name)).not.toContain("lk-draining");
    await expect(c.removeLabel(SMALL, id, "not-there")).rejects.toBeInstanceOf(GitHubNotFoundError);

    expect(await c.deleteRunner(SMALL, id)).toBe("deleted");
    expect(await c.deleteRunner(SMALL, id)).toBe("not-found");
  });

  it("mints tokens and JIT configs wrapped so they cannot be logged", async () => {
    const c = client();
    const reg = await c.createRegistrationToken(SMALL);
    const rem = await c.createRemoveToken(`org:${ORG}`);
    const jit = await c.generateJitConfig(`org:${ORG}`, { name: "jit-1", runnerGroupId: 1, labels: ["lk-managed"] });
    for (const secret of [reg.token, rem.token, jit.encodedJitConfig]) {
      expect(secret).toBeInstanceOf(RedactedSecret);
      expect(secret.reveal().length).toBeGreaterThan(10);
      expect(JSON.stringify({ reg, rem, jit })).not.toContain(secret.reveal());
      expect(inspect({ reg, rem, jit }, { depth: 10 })).not.toContain(secret.reveal());
    }
    expect(Date.parse(reg.expiresAt)).toBeGreaterThan(Date.now());
    expect(jit.runner.name).toBe("jit-1");
    const groups = await c.listRunnerGroups(ORG);
    expect(groups.find((g) => g.id === 1)?.default).toBe(true);
  });

  it("maps a token without admin rights to GITHUB_FORBIDDEN (reads too) and a bad credential to GITHUB_AUTH, without the token in the error", async () => {
    const readToken = await emu.control.createToken("reader", "read");
    const ro = new OctokitGitHubClient({ apiUrl: emu.apiUrl, credential: { kind: "token", token: new RedactedSecret(readToken) } });
    const id = await addRunner(SMALL, "ro-1", ["x"]);
    const err = await ro.deleteRunner(SMALL, id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitHubForbiddenError);
    expect((err as GitHubForbiddenError).code).toBe("GITHUB_FORBIDDEN");
    expect((err as GitHubForbiddenError).status).toBe(403);
    expect((err as Error).message).toContain('"Administration: read and write"');
    expect(JSON.stringify((err as GitHubForbiddenError).details)).not.toContain(readToken);
    expect((err as Error).message).not.toContain(readToken);
    for (const read of [() => ro.listRunners(SMALL), () => ro.getRunner(SMALL, id), () => ro.createRegistrationToken(SMALL)]) {
      await expect(read()).rejects.toMatchObject({ code: "GITHUB_FORBIDDEN", status: 403 });
    }

    const bad = new OctokitGitHubClient({ apiUrl: emu.apiUrl, credential: { kind: "token", token: new RedactedSecret("nope-token") } });
    await expect(bad.listRunners(SMALL)).rejects.toMatchObject({ code: "GITHUB_AUTH", status: 401 });
  });
});

describe("throttling and retry", () => {
  it("retries an injected 5xx and succeeds once the fault clears", async () => {
    await emu.control.setFaults({ errorRate: 1, errorStatus: 502 });
    let cleared = false;
    const c = client({
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (res.status === 502 && !cleared) {
          cleared = true;
          await emu.control.clearFaults();
        }
        return res;
      },
    });
    const s0 = await adminStats();
    const list = await c.listRunners(SMALL);
    expect(list.runners.length).toBeGreaterThan(0);
    expect(c.metrics().retries).toBe(1);
    const s1 = await adminStats();
    expect(s1.injectedErrors - s0.injectedErrors).toBe(1);
    expect(s1.calls - s0.calls).toBe(2);
  });

  it("gives up on a persistent 5xx after the configured retries", async () => {
    await emu.control.setFaults({ errorRate: 1, errorStatus: 503 });
    const c = client({ retries: 2 });
    const s0 = await adminStats();
    const err = await c.listRunners(SMALL).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitHubApiError);
    expect((err as GitHubApiError).status).toBe(503);
    expect((await adminStats()).injectedErrors - s0.injectedErrors).toBe(3);
  });

  it("retries a secondary rate limit after retry-after, bounded by the retry count", async () => {
    await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 1 } });
    const c = client({ rateLimitRetries: 2 });
    const s0 = await adminStats();
    const err = await c.listRunners(SMALL).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitHubRateLimitedError);
    expect((await adminStats()).rateLimited - s0.rateLimited).toBe(3);
    expect(c.metrics().retries).toBe(2);
  });

  it("retries a secondary rate limit (429) and succeeds when it lifts", async () => {
    await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 1, status: 429 } });
    let lifted = false;
    const c = client({
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (res.status === 429 && !lifted) {
          lifted = true;
          await emu.control.clearFaults();
        }
        return res;
      },
    });
    const list = await c.listRunners(SMALL);
    expect(list.runners.length).toBeGreaterThan(0);
    expect(c.metrics().retries).toBe(1);
  });

  it("logs throttling without the token", async () => {
    await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 1 } });
    let logged = "";
    const log = createLogger({ component: "test", level: "debug", destination: { write: (s: string): void => void (logged += s) } });
    const c = client({ rateLimitRetries: 1, log });
    await expect(c.listRunners(SMALL)).rejects.toBeInstanceOf(GitHubRateLimitedError);
    expect(logged).toContain("GitHub secondary rate limit hit");
    expect(logged).toContain("/repos/{owner}/{repo}/actions/runners");
    expect(logged).not.toContain(emu.token);
  });

  it("does not wait longer than the bound: a long retry-after fails at once", async () => {
    await emu.control.setFaults({ rateLimit: { secondary: true, retryAfterS: 3600 } });
    const c = client({ maxRetryWaitSeconds: 120 });
    const s0 = await adminStats();
    await expect(c.listRunners(SMALL)).rejects.toMatchObject({ code: "GITHUB_RATE_LIMITED" });
    expect((await adminStats()).rateLimited - s0.rateLimited).toBe(1);
  });

  it("retries an exhausted primary limit after its reset, bounded", async () => {
    await emu.control.setFaults({ rateLimit: { remaining: 0, resetAfterMs: 2000 } });
    const c = client({ rateLimitRetries: 1 });
    const s0 = await adminStats();
    await expect(c.listRunners(SMALL)).rejects.toBeInstanceOf(GitHubRateLimitedError);
    expect((await adminStats()).rateLimited - s0.rateLimited).toBe(2);
    expect(c.rateLimit().remaining).toBe(0);
  });
});

describe("rate-limit reserve", () => {
  it("defers observation and creation at the reserve but still lets removals through", async () => {
    const c = client({ rateLimitReserve: 10 });
    const victim = await addRunner(SMALL, "reserve-victim", ["lk-managed"]);
    await emu.control.setFaults({ rateLimit: { remaining: 11, resetAfterMs: 3_600_000 } });

    await c.listRunners(SMALL); // spends one point: 10 left, at the reserve
    expect(c.rateLimit()).toMatchObject({ remaining: 10, reserve: 10, reserveActive: true });

    const s0 = await adminStats();
    await expect(c.listRunners(SMALL)).rejects.toBeInstanceOf(GitHubRateLimitReserveError);
    await expect(c.createRegistrationToken(SMALL)).rejects.toMatchObject({ code: "GITHUB_RATE_LIMIT_RESERVED" });
    // Nothing was sent for the deferred calls.
    expect((await adminStats()).calls - s0.calls).toBe(0);
    expect(c.metrics().deferred).toBe(2);

    // Removals still go out, and spend from the reserve; so does the one-runner read a drain waits on.
    expect((await c.getRunner(SMALL, victim))?.id).toBe(victim);
    const token = await c.createRemoveToken(SMALL);
    expect(token.token.length).toBeGreaterThan(0);
    await c.setCustomLabels(SMALL, victim, ["lk-managed", "lk-draining"]);
    expect(await c.deleteRunner(SMALL, victim)).toBe("deleted");
    expect((await adminStats()).calls - s0.calls).toBe(4);
    expect(c.rateLimit().remaining).toBe(6);
  });
});
