/**
 * The emulator where it follows GitHub's imperfections and its stricter answers: the REST `busy` flag lagging
 * the job both ways, a killed runner staying `online` for a while, seeded webhook drops and delays (counted in
 * the stats), `GET /rate_limit` answering when the limit is used up, a token without admin rights refused on
 * runner reads, and job traces replayed through the control API.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OpenApiValidator, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { checkedFetch, ConformanceLog, eventually, ProtocolRunner } from "./github-emulator-fixtures.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let receiver: Server;
let receiverUrl: string;
const received: string[] = [];
let validator: OpenApiValidator;
const started: GitHubEmulator[] = [];

beforeAll(async () => {
  validator = OpenApiValidator.load();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push(req.headers["x-github-delivery"] as string);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

afterEach(async () => {
  for (const e of started.splice(0)) await e.stop();
});

afterAll(async () => {
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

async function emulator(opts: Parameters<typeof startGitHubEmulator>[0]): Promise<GitHubEmulator> {
  const e = await startGitHubEmulator({ token: "t", repos: ["acme/api"], orgs: ["acme"], ...opts });
  started.push(e);
  return e;
}

async function runnerFor(emu: GitHubEmulator, name: string, labels: string[]): Promise<ProtocolRunner> {
  const res = await fetch(`${emu.apiUrl}/repos/acme/api/actions/runners/registration-token`, { method: "POST", headers: { authorization: "token t" } });
  const { token } = (await res.json()) as { token: string };
  const runner = await ProtocolRunner.register(emu.url, token, { url: emu.webUrl("acme/api"), name, labels });
  expect(await runner.connect()).toBe(201);
  return runner;
}

async function restRunner(emu: GitHubEmulator, id: number): Promise<{ status: string; busy: boolean }> {
  const res = await fetch(`${emu.apiUrl}/repos/acme/api/actions/runners/${id}`, { headers: { authorization: "token t" } });
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; busy: boolean };
}

describe("realism: busy and online lag", () => {
  it("shows busy only busyStartLagMs after the job was handed out and still busyEndLagMs after it ended", async () => {
    const emu = await emulator({ offlineAfterMs: 30_000, realism: { busyStartLagMs: 600, busyEndLagMs: 600 } });
    const runner = await runnerFor(emu, "lagging", ["lag"]);
    const { id } = await emu.control.createJob("acme/api", { labels: ["lag"] });
    await runner.nextJob();
    await runner.started(id);
    // The server knows at once (control API), GitHub's REST view does not yet.
    expect((await emu.control.listRunners()).find((r) => r.id === runner.agentId)?.busy).toBe(true);
    expect((await restRunner(emu, runner.agentId)).busy).toBe(false);
    await eventually(async () => (await restRunner(emu, runner.agentId)).busy, 3000, "busy in REST");
    await runner.completed(id, "success");
    expect((await emu.control.listRunners()).find((r) => r.id === runner.agentId)?.busy).toBe(false);
    expect((await restRunner(emu, runner.agentId)).busy).toBe(true);
    await eventually(async () => !(await restRunner(emu, runner.agentId)).busy, 3000, "idle in REST");
  });

  it("is exact without realism (the fault-free mode)", async () => {
    const emu = await emulator({ offlineAfterMs: 30_000 });
    expect(await emu.control.getRealism()).toMatchObject({ busyStartLagMs: 0, busyEndLagMs: 0, onlineLagMs: 0, webhookDropRate: 0 });
    const runner = await runnerFor(emu, "exact", ["exact"]);
    const { id } = await emu.control.createJob("acme/api", { labels: ["exact"] });
    await runner.nextJob();
    expect((await restRunner(emu, runner.agentId)).busy).toBe(true);
    await runner.completed(id, "success");
    expect((await restRunner(emu, runner.agentId)).busy).toBe(false);
  });

  it("keeps a runner that vanished without a goodbye online for onlineLagMs after its session expired; a goodbye is offline at once", async () => {
    const emu = await emulator({ offlineAfterMs: 300, realism: { onlineLagMs: 1500 } });
    const killed = await runnerFor(emu, "killed", ["k"]);
    const polite = await runnerFor(emu, "polite", ["p"]);
    void killed.poll(50);
    void polite.poll(50);
    await polite.disconnect();
    // Server truth: the killed runner's session expires after offlineAfterMs.
    await eventually(async () => (await emu.control.listRunners()).find((r) => r.id === killed.agentId)?.status === "offline", 3000, "session expiry");
    expect((await restRunner(emu, killed.agentId)).status).toBe("online");
    expect((await restRunner(emu, polite.agentId)).status).toBe("offline");
    await eventually(async () => (await restRunner(emu, killed.agentId)).status === "offline", 4000, "offline in REST");
  });
});

describe("realism: webhook deliveries", () => {
  async function burst(seed: number): Promise<{ fates: (string | undefined)[]; stats: { delivered: number; dropped: number; delayed: number } }> {
    const emu = await emulator({ webhookUrl: receiverUrl, realism: { webhookDropRate: 0.3, webhookDelayRate: 0.3, webhookDelayMaxMs: 400, seed } });
    for (let i = 0; i < 40; i++) await emu.control.createJob("acme/api", { labels: ["nobody"] });
    const deliveries = await emu.control.webhookDeliveries();
    const s = (await emu.control.stats()).webhooks;
    return { fates: deliveries.map((d) => d.fate), stats: s };
  }

  it("drops and delays a seeded share, counts them, and a late delivery arrives after later ones", async () => {
    received.length = 0;
    const a = await burst(7);
    expect(a.fates).toHaveLength(40);
    expect(a.stats.dropped).toBe(a.fates.filter((f) => f === "dropped").length);
    expect(a.stats.delayed).toBe(a.fates.filter((f) => f === "delayed").length);
    expect(a.stats.dropped).toBeGreaterThan(4);
    expect(a.stats.delayed).toBeGreaterThan(2);
    // Every delivery not dropped is sent (late ones too, once due); dropped ones never reach the receiver.
    expect(a.stats.delivered).toBe(40 - a.stats.dropped);
    expect(received).toHaveLength(40 - a.stats.dropped);
    // Same seed, same fates: a run is reproducible. Another seed picks others.
    expect((await burst(7)).fates).toEqual(a.fates);
    expect((await burst(8)).fates).not.toEqual(a.fates);
  });

  it("sends a delayed delivery after a prompt later one", async () => {
    received.length = 0;
    const emu = await emulator({ webhookUrl: receiverUrl, realism: { webhookDelayRate: 1, webhookDelayMaxMs: 300 } });
    await emu.control.createJob("acme/api", { labels: ["nobody"] });
    await emu.control.setRealism({});
    expect(await emu.control.getRealism()).toMatchObject({ webhookDelayRate: 0 });
    await emu.control.createJob("acme/api", { labels: ["nobody"] });
    const deliveries = await emu.control.webhookDeliveries();
    expect(deliveries.map((d) => d.fate)).toEqual(["delayed", undefined]);
    expect(deliveries[0]!.delayMs).toBeGreaterThanOrEqual(150);
    expect(received).toEqual([deliveries[1]!.id, deliveries[0]!.id]);
    expect((await emu.control.stats()).webhooks).toMatchObject({ delivered: 2, delayed: 1, dropped: 0 });
  });

  it("refuses bad realism settings with path: message", async () => {
    const emu = await emulator({});
    await expect(emu.control.setRealism({ webhookDropRate: 2 })).rejects.toThrow(/realism\.webhookDropRate: must be at most 1/);
    await expect(emu.control.setRealism({ nope: 1 } as never)).rejects.toThrow(/realism\.nope: unknown key/);
  });
});

describe("GitHub's answers", () => {
  it("answers GET /rate_limit with 200 when the primary limit is used up, without spending it", async () => {
    const emu = await emulator({ rateLimitPerHour: 3 });
    const log = new ConformanceLog(validator, emu.apiUrl);
    const auth = { authorization: "token t" };
    for (let i = 0; i < 3; i++) expect((await checkedFetch(log, "GET", `${emu.apiUrl}/repos/acme/api/actions/runners`, { headers: auth })).status).toBe(200);
    expect((await checkedFetch(log, "GET", `${emu.apiUrl}/repos/acme/api/actions/runners`, { headers: auth })).status).toBe(403);
    const rl = await checkedFetch(log, "GET", `${emu.apiUrl}/rate_limit`, { headers: auth });
    expect(rl.status).toBe(200);
    expect(rl.body).toMatchObject({ resources: { core: { limit: 3, used: 3, remaining: 0 } } });
    expect(rl.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(log.violations).toEqual([]);
  });

  it("refuses a token without admin rights on runner reads and writes (403, X-Accepted-GitHub-Permissions) but lets it read runs", async () => {
    const emu = await emulator({});
    const log = new ConformanceLog(validator, emu.apiUrl);
    const reader = await emu.control.createToken("reader", "read");
    const runner = await runnerFor(emu, "r1", ["x"]);
    const h = { authorization: `token ${reader}` };
    const cases: [string, string, string, unknown?][] = [
      ["GET", "/repos/acme/api/actions/runners", "administration=read"],
      ["GET", `/repos/acme/api/actions/runners/${runner.agentId}`, "administration=read"],
      ["GET", "/repos/acme/api/actions/runners/downloads", "administration=read"],
      ["POST", "/repos/acme/api/actions/runners/registration-token", "administration=write"],
      ["POST", "/repos/acme/api/actions/runners/remove-token", "administration=write"],
      ["POST", "/repos/acme/api/actions/runners/generate-jitconfig", "administration=write", { name: "j", runner_group_id: 1, labels: ["x"] }],
      ["GET", "/orgs/acme/actions/runners", "organization_self_hosted_runners=read"],
      ["GET", "/orgs/acme/actions/runner-groups", "organization_self_hosted_runners=read"],
      ["POST", "/orgs/acme/actions/runners/registration-token", "organization_self_hosted_runners=write"],
    ];
    for (const [method, path, permission, body] of cases) {
      const res = await checkedFetch(log, method, `${emu.apiUrl}${path}`, { headers: h, ...(body === undefined ? {} : { body }) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body).toMatchObject({ message: "Resource not accessible by personal access token" });
      expect(res.headers.get("x-accepted-github-permissions"), `${method} ${path}`).toBe(permission);
    }
    // The admin token still reads them; the reader may read workflow runs (Actions: read).
    expect((await checkedFetch(log, "GET", `${emu.apiUrl}/repos/acme/api/actions/runners`, { headers: { authorization: "token t" } })).status).toBe(200);
    expect((await checkedFetch(log, "GET", `${emu.apiUrl}/repos/acme/api/actions/runs`, { headers: h })).status).toBe(200);
    expect(log.violations).toEqual([]);
  });
});

describe("job traces", () => {
  it("queues each job at its time and reports created/started/completed, the runner, the queue wait, and unmatched jobs still queued", async () => {
    const emu = await emulator({ offlineAfterMs: 30_000 });
    const runner = await runnerFor(emu, "tracer", ["t"]);
    const t0 = Date.now();
    const { id } = await emu.control.startTrace([
      { repo: "acme/api", labels: ["t"], atMs: 0, durationMs: 50, name: "first" },
      { repo: "acme/api", labels: ["t"], atMs: 400, durationMs: 50, name: "second" },
      { repo: "acme/api", labels: ["nobody-has-this"], atMs: 100, name: "orphan" },
    ]);
    const early = await emu.control.getTrace(id);
    expect(early.summary.pending).toBeGreaterThanOrEqual(1);
    expect(early.jobs.find((j) => j.name === "second")?.status).toBe("pending");
    // Work the two matching jobs as a runner would.
    for (let n = 0; n < 2; n++) {
      const job = await runner.nextJob(5000);
      await runner.started(job.id);
      await sleep(job.durationMs);
      await runner.completed(job.id, "success");
    }
    const v = await emu.control.getTrace(id);
    expect(v.summary).toEqual({ total: 3, pending: 0, queued: 1, inProgress: 0, succeeded: 2, failed: 0, cancelled: 0 });
    const [first, second, orphan] = v.jobs;
    expect(first).toMatchObject({ name: "first", status: "completed", conclusion: "success", runnerName: "tracer", runnerId: runner.agentId });
    expect(second!.createdAtMs! - t0).toBeGreaterThanOrEqual(350);
    expect(second!.completedAtMs!).toBeGreaterThanOrEqual(second!.startedAtMs!);
    expect(second!.queueWaitMs).toBe(second!.startedAtMs! - second!.createdAtMs!);
    expect(second!.createdAt).toBe(new Date(second!.createdAtMs!).toISOString().replace(/\.\d{3}Z$/, "Z"));
    expect(orphan).toMatchObject({ name: "orphan", status: "queued", runnerName: null, queueWaitMs: null });
    expect(orphan!.jobId).toBeTypeOf("number");
    // Not lost: the orphan is still queued on the emulator too.
    expect((await emu.control.listJobs("queued")).map((j) => j.id)).toContain(orphan!.jobId);
  });

  it("refuses a bad trace with path: message and an unknown trace with 404", async () => {
    const emu = await emulator({});
    await expect(emu.control.startTrace([{ repo: "acme/nope", labels: ["x"], atMs: 0 }])).rejects.toThrow(/jobs\[0\]\.repo: not a served repository/);
    await expect(emu.control.startTrace([{ repo: "acme/api", labels: [], atMs: 0 }])).rejects.toThrow(/jobs\[0\]\.labels/);
    await expect(emu.control.getTrace(99)).rejects.toThrow(/404/);
  });
});
