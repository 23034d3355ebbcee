// The demand sources against real parts: the job store and the delivery ledger in a real nats-server's JetStream
// KV (compare-and-set across connections, monotonic state, the shared view a new leader or receiver starts from,
// de-duplication that survives a restart of the receiver and of nats-server itself), and the webhook receiver and
// the REST reconciliation against the GitHub emulator, which sends signed `workflow_job` webhooks and serves runs
// and jobs: a dropped `completed` and a dropped `queued` are both repaired by one REST pass, and a pass over an
// unchanged queue is answered with 304s that cost no rate limit.
import { randomUUID } from "node:crypto";
import { startGitHubEmulator, startNatsServer, type GitHubEmulator, type NatsServerHandle } from "@lanekeeper/harness";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvDeliveryLedger } from "../../packages/coordinator/src/demand/delivery-ledger.js";
import { KvJobStore } from "../../packages/coordinator/src/demand/kv-job-store.js";
import { RestDemandReconciler } from "../../packages/coordinator/src/demand/rest-reconciler.js";
import { webhookSignature } from "../../packages/coordinator/src/demand/webhook-signature.js";
import { WebhookReceiver, type DeliveryRequest } from "../../packages/coordinator/src/demand/webhook-receiver.js";
import { OctokitGitHubClient } from "../../packages/coordinator/src/github/octokit-github-client.js";
import { RedactedSecret } from "../../packages/coordinator/src/github/redacted-secret.js";
import type { DemandJob } from "../../packages/coordinator/src/observe/demand.js";
import { eventually } from "./agent-fixture.js";

const REPO = "acme/api";
const SECRET = "demand-test-secret";
let nats: NatsServerHandle;
const conns: NatsConnection[] = [];

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await nats?.stop();
});

const job = (id: number, status: DemandJob["status"], extra: Partial<DemandJob> = {}): DemandJob => ({
  id,
  runId: 1,
  scope: REPO,
  repository: REPO,
  labels: ["self-hosted", "linux"],
  status,
  createdAtMs: 1_000,
  ...(status === "queued" ? {} : { startedAtMs: 5_000, runnerName: "lk-x" }),
  ...(status === "completed" ? { completedAtMs: 9_000 } : {}),
  source: "webhook",
  ...extra,
});

describe("job store in JetStream KV", () => {
  it("an empty bucket lists nothing; records merge monotonically; a second connection sees the same view", async () => {
    const a = await KvJobStore.open((await conn()).jetstream(), { bucket: "lk_jobs_t1" });
    expect(await a.list()).toEqual([]);
    expect(await a.record(job(1, "queued"))).toMatchObject({ before: undefined, after: { status: "queued" } });
    expect(await a.record(job(1, "in_progress"))).toMatchObject({ before: { status: "queued" }, after: { status: "in_progress" } });
    // A late queued (webhook out of order) changes nothing.
    expect(await a.record(job(1, "queued"))).toBeUndefined();
    // Another coordinator (its own connection) continues from the same state.
    const b = await KvJobStore.open((await conn()).jetstream(), { bucket: "lk_jobs_t1" });
    expect(await b.get(1)).toMatchObject({ status: "in_progress", runnerName: "lk-x" });
    expect(await b.record(job(1, "queued", { source: "rest" }))).toBeUndefined();
    await b.record(job(1, "completed"));
    expect((await a.get(1))?.status).toBe("completed");
    await b.markReconciled(REPO, 42);
    await a.markReconciled("org:acme", 7);
    expect(await a.reconciledAt()).toEqual({ [REPO]: 42, "org:acme": 7 });
  });

  it("concurrent writers of one job (compare-and-set) end at the latest state whatever the interleaving", async () => {
    const stores = await Promise.all([0, 1, 2].map(async () => KvJobStore.open((await conn()).jetstream(), { bucket: "lk_jobs_t2" })));
    const writes = [];
    for (let i = 0; i < 30; i++) {
      const s = stores[i % 3] as KvJobStore;
      const status = (["queued", "in_progress", "completed"] as const)[i % 3] ?? "queued";
      writes.push(s.record(job(7, status)));
    }
    await Promise.all(writes);
    expect((await (stores[0] as KvJobStore).get(7))?.status).toBe("completed");
  });

  it("lists many jobs in one read, prunes completed jobs past the window only, and watchers see new writes", async () => {
    const s = await KvJobStore.open((await conn()).jetstream(), { bucket: "lk_jobs_t3" });
    const seen: number[] = [];
    const unwatch = await s.watch((j) => seen.push(j.id));
    for (let i = 1; i <= 120; i++) await s.record(job(i, i % 2 === 0 ? "completed" : "queued", { completedAtMs: i % 2 === 0 ? i * 10 : undefined }));
    expect((await s.list()).map((j) => j.id)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(await s.prune(601)).toBe(30); // completed at 20, 40, ..., 600
    const left = await s.list();
    expect(left).toHaveLength(90);
    expect(left.filter((j) => j.status === "completed").every((j) => (j.completedAtMs ?? 0) > 600)).toBe(true);
    await eventually(() => Promise.resolve(seen.length >= 120), "the watcher saw every write", 5000);
    unwatch();
  });
});

describe("webhook receiver with the KV delivery ledger", () => {
  function request(body: string, deliveryId: string): DeliveryRequest {
    return {
      method: "POST",
      path: "/github/webhook",
      headers: { "x-github-event": "workflow_job", "x-github-delivery": deliveryId, "x-hub-signature-256": webhookSignature(Buffer.from(SECRET), Buffer.from(body)) },
      body: Buffer.from(body),
    };
  }
  const payload = (id: number): string =>
    JSON.stringify({
      action: "queued",
      workflow_job: { id, run_id: 3, status: "queued", created_at: "2026-12-04T22:00:00Z", started_at: "2026-12-04T22:00:00Z", labels: ["linux"], runner_name: null },
      repository: { full_name: REPO },
    });

  async function receiver(bucketSuffix: string): Promise<WebhookReceiver> {
    const js = (await conn()).jetstream();
    return new WebhookReceiver({
      secret: Buffer.from(SECRET),
      maxBodyBytes: 65_536,
      ledger: await KvDeliveryLedger.open(js, { bucket: `lk_deliveries_${bucketSuffix}` }),
      jobs: await KvJobStore.open(js, { bucket: `lk_jobs_${bucketSuffix}` }),
      scopes: () => ({ demand: [REPO], lanes: [REPO] }),
    });
  }

  it("a replay is refused by a new receiver (new process, new connection), and after a nats-server restart", async () => {
    const id = randomUUID();
    const first = await receiver("r1");
    expect((await first.handle(request(payload(11), id))).result).toBe("accepted");
    // A new receiver: what a new leader, or a restarted serve, starts with.
    const second = await receiver("r1");
    expect((await second.handle(request(payload(11), id))).result).toBe("duplicate");
    await nats.restart();
    await eventually(async () => {
      try {
        return (await (await receiver("r1")).handle(request(payload(11), id))).result === "duplicate";
      } catch {
        return false;
      }
    }, "the replay refused after the restart", 15_000);
    // A fresh delivery is still accepted.
    const third = await receiver("r1");
    expect((await third.handle(request(payload(12), randomUUID()))).result).toBe("accepted");
  });
});

describe("REST reconciliation against the GitHub emulator", () => {
  let emu: GitHubEmulator;
  let jobs: KvJobStore;
  let server: { port: number; close(): Promise<void> };
  let rest: RestDemandReconciler;
  let github: OctokitGitHubClient;

  beforeAll(async () => {
    emu = await startGitHubEmulator({ repos: [REPO] });
    const js = (await conn()).jetstream();
    jobs = await KvJobStore.open(js, { bucket: "lk_jobs_emu" });
    const receiver = new WebhookReceiver({
      secret: Buffer.from(SECRET),
      maxBodyBytes: 1_048_576,
      ledger: await KvDeliveryLedger.open(js, { bucket: "lk_deliveries_emu" }),
      jobs,
      scopes: () => ({ demand: [REPO], lanes: [REPO] }),
    });
    server = await receiver.listen("127.0.0.1:0");
    github = new OctokitGitHubClient({ apiUrl: emu.apiUrl, credential: { kind: "token", token: new RedactedSecret(emu.token) }, retryBaseMs: 5 });
    rest = new RestDemandReconciler({ github, jobs, orgReposIntervalMs: 600_000 });
  });
  afterAll(async () => {
    await server?.close();
    await emu?.stop();
  });

  async function points(): Promise<number> {
    return (await emu.control.stats()).byToken.admin?.points ?? 0;
  }

  it("the emulator's signed webhooks reach the store", async () => {
    await emu.control.setWebhook(`http://127.0.0.1:${server.port}/github/webhook`, SECRET);
    const { id } = await emu.control.createJob(REPO, { labels: ["self-hosted", "linux"] });
    const d = await emu.control.webhookDeliveries();
    expect(d.at(-1)).toMatchObject({ event: "workflow_job", action: "queued", status: 200 });
    expect(await jobs.get(id)).toMatchObject({ status: "queued", source: "webhook", labels: ["self-hosted", "linux"], scope: REPO });
    await emu.control.cancelJob(id);
    await emu.control.webhookDeliveries();
    expect((await jobs.get(id))?.status).toBe("completed");
  });

  it("a dropped completed: the store thinks the job queued, one REST pass reads the job and closes it", async () => {
    await emu.control.setWebhook(`http://127.0.0.1:${server.port}/github/webhook`, SECRET);
    const { id } = await emu.control.createJob(REPO, { labels: ["self-hosted", "linux"] });
    await emu.control.webhookDeliveries();
    expect((await jobs.get(id))?.status).toBe("queued");
    await emu.control.setWebhook(undefined);
    await emu.control.cancelJob(id); // GitHub would send `completed`; it is lost
    expect((await jobs.get(id))?.status).toBe("queued");
    const pass = await rest.reconcileScope(REPO);
    expect(pass).toMatchObject({ result: "ok", lookedUp: 1 });
    expect(await jobs.get(id)).toMatchObject({ status: "completed", source: "rest" });
    expect((await jobs.reconciledAt())[REPO]).toBeGreaterThan(0);
  });

  it("a dropped queued: the job is not in the store until one REST pass lists it", async () => {
    await emu.control.setWebhook(undefined);
    const { id } = await emu.control.createJob(REPO, { labels: ["self-hosted", "linux", "gpu"] });
    expect(await jobs.get(id)).toBeUndefined();
    const pass = await rest.reconcileScope(REPO);
    expect(pass.result).toBe("ok");
    expect(await jobs.get(id)).toMatchObject({ status: "queued", source: "rest", labels: ["self-hosted", "linux", "gpu"] });
  });

  it("a pass over an unchanged queue is all 304s: no rate limit spent", async () => {
    await rest.reconcileScope(REPO); // warm every ETag
    const before = await points();
    const notModifiedBefore = github.metrics().notModified;
    const pass = await rest.reconcileScope(REPO);
    expect(pass.result).toBe("ok");
    expect(pass.requests).toBeGreaterThanOrEqual(3); // queued runs, their jobs, in-progress runs
    expect(github.metrics().notModified - notModifiedBefore).toBe(pass.requests);
    expect(await points()).toBe(before);
  });
});
