/**
 * `workflow_job` webhook deliveries (actions `queued`, `in_progress`, `completed`), POSTed in order to the
 * configured URL with GitHub's headers and, when a secret is set, `X-Hub-Signature-256: sha256=<HMAC-SHA256
 * of the body>`. Like GitHub, a failed delivery is recorded and not retried.
 */
import { createHmac, randomUUID } from "node:crypto";
import { MAX_REMEMBERED_DELIVERIES, WEBHOOK_TIMEOUT_MS } from "./limits.js";

/** Where deliveries go. */
export interface WebhookTarget {
  url: string;
  secret?: string;
}

/** A delivery as `GET /_emulator/webhook/deliveries` reports it. */
export interface WebhookDelivery {
  id: string;
  event: string;
  action: string;
  /** Response status, or 0 when the request failed. */
  status: number;
  error?: string;
}

/** HMAC-SHA256 signature header value of a payload. */
export function signPayload(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Sends deliveries one after another. */
export class WebhookSender {
  private target: WebhookTarget | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly recent: WebhookDelivery[] = [];

  constructor(
    target: WebhookTarget | undefined,
    private readonly onResult: (ok: boolean) => void,
  ) {
    this.target = target;
  }

  /** Replaces (or with undefined, removes) the target. */
  configure(target: WebhookTarget | undefined): void {
    this.target = target;
  }

  /** Queues a delivery; no-op without a target. */
  deliver(event: string, action: string, payload: Record<string, unknown>, headers: Record<string, string> = {}): void {
    const target = this.target;
    if (!target) return;
    const body = JSON.stringify(payload);
    const id = randomUUID();
    const all: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/lk-emulator",
      "x-github-event": event,
      "x-github-delivery": id,
      "x-github-hook-id": "1",
      ...headers,
    };
    if (target.secret !== undefined) {
      all["x-hub-signature-256"] = signPayload(target.secret, body);
      all["x-hub-signature"] = `sha1=${createHmac("sha1", target.secret).update(body).digest("hex")}`;
    }
    this.chain = this.chain.then(async () => {
      const record: WebhookDelivery = { id, event, action, status: 0 };
      try {
        const res = await fetch(target.url, { method: "POST", headers: all, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
        await res.arrayBuffer();
        record.status = res.status;
      } catch (err) {
        record.error = String(err);
      }
      this.onResult(record.status >= 200 && record.status < 300);
      this.recent.push(record);
      if (this.recent.length > MAX_REMEMBERED_DELIVERIES) this.recent.shift();
    });
  }

  /** Deliveries made so far (most recent last). */
  deliveries(): WebhookDelivery[] {
    return structuredClone(this.recent);
  }

  /** Resolves when every queued delivery has been attempted. */
  idle(): Promise<void> {
    return this.chain;
  }
}
