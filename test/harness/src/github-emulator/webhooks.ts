/**
 * `workflow_job` webhook deliveries (actions `queued`, `in_progress`, `completed`), POSTed in order to the
 * configured URL with GitHub's headers and, when a secret is set, `X-Hub-Signature-256: sha256=<HMAC-SHA256
 * of the body>`. Like GitHub, a failed delivery is recorded and not retried.
 *
 * With realism (`realism.ts`), a seeded share of deliveries is dropped (recorded, never sent) and another share
 * is sent late, outside the in-order chain, so it arrives after later ones, as GitHub's do now and then.
 */
import { createHmac, randomUUID } from "node:crypto";
import { MAX_REMEMBERED_DELIVERIES, WEBHOOK_TIMEOUT_MS } from "./limits.js";
import { NO_REALISM, SeededRandom, type ResolvedRealism } from "./realism.js";

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
  /** Response status, or 0 when the request failed or was never sent. */
  status: number;
  error?: string;
  /** `dropped`: never sent (realism); `delayed`: sent `delayMs` late. Absent for a prompt delivery. */
  fate?: "dropped" | "delayed";
  /** How late a delayed delivery was sent, ms. */
  delayMs?: number;
}

/** What became of a delivery, for the stats. */
export type DeliveryFate = "delivered" | "failed" | "dropped" | "delayed";

/** HMAC-SHA256 signature header value of a payload. */
export function signPayload(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Sends deliveries one after another. */
export class WebhookSender {
  private target: WebhookTarget | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly recent: WebhookDelivery[] = [];
  private readonly late = new Set<{ timer: NodeJS.Timeout; done: Promise<void>; fire: () => void }>();
  private realism: ResolvedRealism;
  private random: SeededRandom;

  /** @param onResult - called once per delivery with its fate (`delayed` first, then its send's result) */
  constructor(
    target: WebhookTarget | undefined,
    private readonly onResult: (fate: DeliveryFate) => void,
    realism: ResolvedRealism = NO_REALISM,
  ) {
    this.target = target;
    this.realism = realism;
    this.random = new SeededRandom(realism.seed);
  }

  /** Replaces the realism settings; the generator restarts from the seed. */
  setRealism(realism: ResolvedRealism): void {
    this.realism = realism;
    this.random = new SeededRandom(realism.seed);
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
    // Recorded now, in the order the events happened; a send fills in its status later.
    const record: WebhookDelivery = { id, event, action, status: 0 };
    this.remember(record);
    const send = async (): Promise<void> => {
      try {
        const res = await fetch(target.url, { method: "POST", headers: all, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
        await res.arrayBuffer();
        record.status = res.status;
      } catch (err) {
        record.error = String(err);
      }
      this.onResult(record.status >= 200 && record.status < 300 ? "delivered" : "failed");
    };
    // Two draws per delivery whatever the outcome, so one delivery's fate does not shift the next ones'.
    const dropRoll = this.random.next();
    const delayRoll = this.random.next();
    const r = this.realism;
    if (dropRoll < r.webhookDropRate) {
      record.fate = "dropped";
      this.onResult("dropped");
      return;
    }
    if (delayRoll < r.webhookDelayRate && r.webhookDelayMaxMs > 0) {
      record.fate = "delayed";
      record.delayMs = Math.round((0.5 + 0.5 * (delayRoll / r.webhookDelayRate)) * r.webhookDelayMaxMs);
      this.onResult("delayed");
      let fire = (): void => undefined;
      const done = new Promise<void>((resolve) => {
        fire = (): void => {
          this.late.delete(entry);
          clearTimeout(entry.timer);
          // `send` records its own failures; it never rejects.
          void send().finally(resolve);
        };
      });
      const entry = { timer: setTimeout(() => fire(), record.delayMs), done, fire: (): void => fire() };
      this.late.add(entry);
      return;
    }
    this.chain = this.chain.then(send);
  }

  private remember(record: WebhookDelivery): void {
    this.recent.push(record);
    if (this.recent.length > MAX_REMEMBERED_DELIVERIES) this.recent.shift();
  }

  /** Deliveries so far, in the order of their events (most recent last); one not sent yet has status 0. */
  deliveries(): WebhookDelivery[] {
    return structuredClone(this.recent);
  }

  /** Resolves when every queued delivery, late ones included, has been attempted. */
  async idle(): Promise<void> {
    await Promise.all([this.chain, ...[...this.late].map((l) => l.done)]);
  }

  /** Sends the late deliveries now (shutdown: nothing is left waiting on a timer). */
  flushLate(): void {
    for (const l of [...this.late]) l.fire();
  }
}
