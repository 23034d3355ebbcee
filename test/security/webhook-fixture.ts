/**
 * A webhook receiver over in-memory stores, and GitHub-shaped `workflow_job` deliveries signed as GitHub signs
 * them, for the webhook attack suites.
 */
import { createHmac, randomUUID } from "node:crypto";
import { MemoryDeliveryLedger } from "../../packages/coordinator/src/demand/delivery-ledger.js";
import type { JobTransition } from "../../packages/coordinator/src/demand/job-store.js";
import { MemoryJobStore } from "../../packages/coordinator/src/demand/memory-job-store.js";
import {
  WebhookReceiver,
  type DeliveryRejection,
  type DeliveryRequest,
  type DeliveryResult,
} from "../../packages/coordinator/src/demand/webhook-receiver.js";

export const SECRET = "it's a secret to everybody";
export const REPO = "acme/api";

/** The `X-Hub-Signature-256` GitHub would send. */
export function sign(body: string | Uint8Array, secret = SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** A `workflow_job` payload as GitHub sends it (the fields the receiver reads, and a few it does not). */
export function workflowJobPayload(action: string, over: { id?: number; status?: string; repo?: string; labels?: string[]; runnerName?: string | null } = {}): Record<string, unknown> {
  const status = over.status ?? action;
  const created = "2026-12-04T22:00:00Z";
  return {
    action,
    workflow_job: {
      id: over.id ?? 1001,
      run_id: 501,
      run_attempt: 1,
      status,
      conclusion: status === "completed" ? "success" : null,
      created_at: created,
      started_at: status === "queued" ? created : "2026-12-04T22:00:07Z",
      completed_at: status === "completed" ? "2026-12-04T22:01:00Z" : null,
      name: "build",
      labels: over.labels ?? ["self-hosted", "linux", "x64"],
      runner_id: status === "queued" ? null : 7,
      runner_name: status === "queued" ? null : (over.runnerName ?? "lk-lane-abc"),
      runner_group_id: status === "queued" ? null : 1,
      runner_group_name: status === "queued" ? null : "Default",
      steps: [],
    },
    repository: { id: 1, full_name: over.repo ?? REPO, name: "api", owner: { login: "acme" } },
    sender: { login: "octocat" },
  };
}

/** A receiver with its stores, what it reported and what it triggered. */
export function receiverWorld(opts: { maxBodyBytes?: number; secret?: string } = {}) {
  const jobs = new MemoryJobStore();
  const ledger = new MemoryDeliveryLedger();
  const results: { result: DeliveryResult; reason?: DeliveryRejection | undefined }[] = [];
  const transitions: JobTransition[] = [];
  const logs: unknown[] = [];
  const log = {
    warn: (o: unknown, m?: string) => logs.push({ level: "warn", o, m }),
    debug: (o: unknown, m?: string) => logs.push({ level: "debug", o, m }),
    info: (o: unknown, m?: string) => logs.push({ level: "info", o, m }),
    error: (o: unknown, m?: string) => logs.push({ level: "error", o, m }),
  };
  const receiver = new WebhookReceiver({
    secret: Buffer.from(opts.secret ?? SECRET),
    path: "/github/webhook",
    maxBodyBytes: opts.maxBodyBytes ?? 65_536,
    ledger,
    jobs,
    scopes: () => ({ demand: [REPO], lanes: [REPO] }),
    onTransition: (t) => transitions.push(t),
    observer: { delivery: (result, reason) => results.push({ result, reason }) },
    log: log as never,
  });
  /** Deliver `payload` (signed with the right secret unless `headers` says otherwise). */
  const deliver = (payload: unknown, headers: Record<string, string | undefined> = {}, raw?: string) => {
    const body = raw ?? JSON.stringify(payload);
    const h: Record<string, string> = {
      "content-type": "application/json",
      "x-github-event": "workflow_job",
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": sign(body),
    };
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) delete h[k];
      else h[k] = v;
    }
    const req: DeliveryRequest = { method: "POST", path: "/github/webhook", headers: h, body: Buffer.from(body) };
    return receiver.handle(req);
  };
  return { receiver, jobs, ledger, results, transitions, logs, deliver };
}
