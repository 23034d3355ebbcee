/**
 * `workflow_job` webhooks: delivered in order (queued, in_progress, completed) to a real HTTP receiver,
 * signed with X-Hub-Signature-256 (verified here independently), and valid against the `x-webhooks`
 * schemas of GitHub's OpenAPI description.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpenApiValidator, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { eventually, ProtocolRunner } from "./github-emulator-fixtures.js";

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
}

const SECRET = `whsec-${process.pid}-${Date.now()}`;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
let emu: GitHubEmulator;
let validator: OpenApiValidator;

/** What a GitHub webhook receiver does: HMAC-SHA256 the raw body with the shared secret, compare in constant time. */
function signatureValid(secret: string, raw: string, header: string | string[] | undefined): boolean {
  if (typeof header !== "string" || !header.startsWith("sha256=")) return false;
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(raw).digest("hex")}`);
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

beforeAll(async () => {
  validator = OpenApiValidator.load();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(req.url === "/fail" ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  emu = await startGitHubEmulator({ token: "t", repos: ["acme/api", "solo/tool"], orgs: ["acme"], webhookUrl: receiverUrl, webhookSecret: SECRET, offlineAfterMs: 30_000 });
});

afterAll(async () => {
  await emu?.stop();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

async function runnerFor(scope: string, name: string, labels: string[]): Promise<ProtocolRunner> {
  const res = await fetch(`${emu.apiUrl}/${scope.includes("/") ? "repos" : "orgs"}/${scope}/actions/runners/registration-token`, { method: "POST", headers: { authorization: "token t" } });
  const { token } = (await res.json()) as { token: string };
  const runner = await ProtocolRunner.register(emu.url, token, { url: emu.webUrl(scope), name, labels });
  await runner.connect();
  return runner;
}

describe("workflow_job webhooks", () => {
  it("delivers queued, in_progress and completed, signed and schema-valid", async () => {
    received.length = 0;
    const runner = await runnerFor("acme", "hooked", ["hook"]);
    const { id } = await emu.control.createJob("acme/api", { labels: ["hook"], name: "hooked-job" });
    await runner.nextJob();
    await runner.started(id);
    await runner.completed(id, "success");
    await eventually(() => received.length >= 3 && received, 10_000, "three deliveries");

    const actions: string[] = [];
    for (const r of received) {
      expect(r.headers["x-github-event"]).toBe("workflow_job");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-github-delivery"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers["user-agent"]).toMatch(/^GitHub-Hookshot\//);
      expect(signatureValid(SECRET, r.raw, r.headers["x-hub-signature-256"])).toBe(true);
      // The check can fail: another secret or a changed body does not verify.
      expect(signatureValid(`${SECRET}x`, r.raw, r.headers["x-hub-signature-256"])).toBe(false);
      expect(signatureValid(SECRET, `${r.raw} `, r.headers["x-hub-signature-256"])).toBe(false);
      const payload = JSON.parse(r.raw) as { action: string; workflow_job: Record<string, unknown>; repository: { full_name: string }; organization?: { login: string } };
      expect(validator.checkWebhook(payload.action, payload)).toEqual([]);
      expect(payload.workflow_job.id).toBe(id);
      expect(payload.workflow_job.status).toBe(payload.action);
      expect(payload.repository.full_name).toBe("acme/api");
      expect(payload.organization?.login).toBe("acme");
      actions.push(payload.action);
    }
    expect(actions).toEqual(["queued", "in_progress", "completed"]);
    const last = JSON.parse(received[2]!.raw) as { workflow_job: Record<string, unknown> };
    expect(last.workflow_job).toMatchObject({ conclusion: "success", runner_name: "hooked", runner_id: runner.agentId, runner_group_name: "Default", labels: ["hook"] });
    const first = JSON.parse(received[0]!.raw) as { workflow_job: Record<string, unknown> };
    expect(first.workflow_job).toMatchObject({ conclusion: null, runner_name: null, runner_id: null });
    expect((await emu.control.stats()).webhooks.delivered).toBeGreaterThanOrEqual(3);
  });

  it("sends unsigned deliveries without a secret, records failed ones, and stops when the hook is removed", async () => {
    received.length = 0;
    await emu.control.setWebhook(receiverUrl);
    const j1 = await emu.control.createJob("solo/tool", { labels: ["nobody"] });
    await eventually(() => received.length >= 1, 10_000, "delivery");
    expect(received[0]!.headers["x-hub-signature-256"]).toBeUndefined();
    expect((JSON.parse(received[0]!.raw) as { organization?: unknown }).organization).toBeUndefined();

    await emu.control.setWebhook(receiverUrl.replace("/hook", "/fail"), SECRET);
    await emu.control.cancelJob(j1.id);
    const deliveries = await emu.control.webhookDeliveries();
    expect(deliveries.at(-1)).toMatchObject({ event: "workflow_job", action: "completed", status: 500 });
    expect((await emu.control.stats()).webhooks.failed).toBeGreaterThanOrEqual(1);

    await emu.control.setWebhook(undefined);
    const before = received.length;
    await emu.control.createJob("solo/tool", { labels: ["nobody"] });
    await emu.control.webhookDeliveries();
    expect(received.length).toBe(before);
  });
});
