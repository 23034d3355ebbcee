import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "@lanekeeper/shared";
import type { DemandJob } from "../observe/demand.js";
import type { DeliveryLedger } from "./delivery-ledger.js";
import { scopeOfRepository } from "./demand-scopes.js";
import { WebhookConfigError } from "./demand-errors.js";
import type { JobStore, JobTransition } from "./job-store.js";
import { MAX_DELIVERY_ID_CHARS } from "./limits.js";
import { demandJobOf, isNotDemand } from "./workflow-job-parse.js";
import { verifyWebhookSignature } from "./webhook-signature.js";

/** How a delivery ended, as counted in `lanekeeper_webhook_deliveries_total{result}`. */
export type DeliveryResult = "accepted" | "duplicate" | "ignored" | "rejected" | "failed";

/** Why a delivery was rejected (`reason` of the rejections counter). */
export type DeliveryRejection = "signature" | "too-large" | "malformed" | "method" | "path";

/** Where the receiver reports what it did (the coordinator's metrics). */
export interface WebhookObserver {
  delivery(result: DeliveryResult, reason?: DeliveryRejection): void;
}

/** Which scopes deliveries are about: read on every delivery, so a policy reload needs no restart. */
export interface WebhookScopes {
  /** Scopes whose jobs are stored (lane entries with `scaling`). */
  readonly demand: readonly string[];
  /** Every lane entry's scope (a job event there may re-arm an ephemeral lane). */
  readonly lanes: readonly string[];
}

/** A `workflow_job` event of a lane scope that is not stored (a fixed-`count` pool's scope). */
export interface LaneJobEvent {
  readonly scope: string;
  readonly action: DemandJob["status"];
}

/** Options of {@link WebhookReceiver}. */
export interface WebhookReceiverOptions {
  /** The webhook secret's bytes (from the environment variable the policy names; never logged). */
  readonly secret: Uint8Array;
  /** @default "/github/webhook" */
  readonly path?: string;
  readonly maxBodyBytes: number;
  readonly ledger: DeliveryLedger;
  readonly jobs: JobStore;
  readonly scopes: () => WebhookScopes;
  /** A stored job changed (a new `queued` job, a job taken, a job completed): the serve loop pokes its reconciler. */
  readonly onTransition?: (t: JobTransition) => void;
  /** A job event of a lane scope whose jobs are not stored. */
  readonly onLaneEvent?: (e: LaneJobEvent) => void;
  readonly observer?: WebhookObserver;
  readonly log?: Logger;
}

/** One HTTP request, as the receiver sees it (headers lower-cased, as node's `IncomingMessage` has them). */
export interface DeliveryRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array;
  readonly remote?: string | undefined;
}

/** The answer to one delivery. */
export interface DeliveryAnswer {
  readonly status: number;
  readonly result: DeliveryResult;
  readonly reason?: DeliveryRejection;
  /** A short word for the response body and the log. */
  readonly detail: string;
}

const ACTIONS = new Set(["queued", "in_progress", "completed"]);
const DELIVERY_ID = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_DELIVERY_ID_CHARS}}$`);

function header(h: DeliveryRequest["headers"], name: string): string | undefined {
  const v = h[name];
  // A repeated header is ambiguous: treat it as absent (a repeated signature header then fails verification).
  return typeof v === "string" ? v : undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * GitHub's `workflow_job` webhooks, verified and de-duplicated, into the job store. The order is the point: the
 * body size is capped before it is read (413), the `X-Hub-Signature-256` HMAC is checked in constant time over the
 * exact bytes before anything parses them (401, logged without the signature, counted, never acted on), `ping` is
 * answered, other events and actions are acknowledged and ignored, then the delivery id is claimed in the shared
 * ledger (a replay, to this or any other coordinator, is acknowledged as a duplicate and not acted on), and the job
 * is merged into the store (its state only moves forward). Any coordinator, leader or not, can receive.
 *
 * The signature covers the body, not the delivery id: a captured body replayed under a fresh id passes. What it can
 * do is bounded: the merge never moves a job back, and the REST reconciliation resolves a job GitHub no longer
 * lists as open.
 */
export class WebhookReceiver {
  private readonly path: string;

  constructor(private readonly o: WebhookReceiverOptions) {
    this.path = o.path ?? "/github/webhook";
  }

  /** Handle one request whose body has been read (at most `maxBodyBytes`). */
  async handle(req: DeliveryRequest): Promise<DeliveryAnswer> {
    const a = await this.answer(req);
    this.o.observer?.delivery(a.result, a.reason);
    const facts = {
      delivery: safeDeliveryId(header(req.headers, "x-github-delivery")),
      event: (header(req.headers, "x-github-event") ?? "").slice(0, 64),
      remote: req.remote,
      status: a.status,
      result: a.result,
      detail: a.detail,
    };
    if (a.result === "rejected" || a.result === "failed") this.o.log?.warn(facts, "webhook delivery refused");
    else this.o.log?.debug(facts, "webhook delivery");
    return a;
  }

  private async answer(req: DeliveryRequest): Promise<DeliveryAnswer> {
    const rejected = (status: number, reason: DeliveryRejection, detail: string): DeliveryAnswer => ({ status, result: "rejected", reason, detail });
    if (req.path !== this.path) return rejected(404, "path", "not found");
    if (req.method !== "POST") return rejected(405, "method", "POST only");
    if (req.body.byteLength > this.o.maxBodyBytes) return rejected(413, "too-large", "payload too large");
    if (!verifyWebhookSignature(this.o.secret, req.body, header(req.headers, "x-hub-signature-256"))) {
      return rejected(401, "signature", "signature does not verify");
    }
    const event = header(req.headers, "x-github-event");
    if (event === "ping") return { status: 200, result: "accepted", detail: "pong" };
    if (event !== "workflow_job") return { status: 202, result: "ignored", detail: `event ${(event ?? "").slice(0, 64)} ignored` };
    const deliveryId = header(req.headers, "x-github-delivery");
    if (deliveryId === undefined || !DELIVERY_ID.test(deliveryId)) return rejected(400, "malformed", "X-GitHub-Delivery missing or malformed");
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(req.body).toString("utf8"));
    } catch {
      return rejected(400, "malformed", "body is not JSON");
    }
    if (!isObj(payload) || typeof payload.action !== "string") return rejected(400, "malformed", "no action");
    if (!ACTIONS.has(payload.action)) return { status: 202, result: "ignored", detail: `action ${payload.action.slice(0, 32)} ignored` };
    const repository = isObj(payload.repository) ? payload.repository.full_name : undefined;
    if (typeof repository !== "string" || !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) return rejected(400, "malformed", "no repository.full_name");
    const scopes = this.o.scopes();
    const demandScope = scopeOfRepository(repository, scopes.demand);
    const laneScope = demandScope ?? scopeOfRepository(repository, scopes.lanes);
    if (laneScope === undefined) return { status: 202, result: "ignored", detail: "not a managed scope" };
    let job: DemandJob | undefined;
    if (demandScope !== undefined) {
      try {
        const parsed = demandJobOf(payload.workflow_job, { scope: demandScope, repository, source: "webhook" });
        if (isNotDemand(parsed)) return { status: 202, result: "ignored", detail: parsed.ignored };
        job = parsed;
      } catch (err) {
        return rejected(400, "malformed", (err as Error).message);
      }
    }
    let claimed: boolean;
    try {
      claimed = await this.o.ledger.claim(deliveryId);
    } catch (err) {
      return { status: 503, result: "failed", detail: `delivery ledger unavailable: ${(err as Error).message}` };
    }
    if (!claimed) return { status: 200, result: "duplicate", detail: "already handled" };
    if (job === undefined) {
      this.o.onLaneEvent?.({ scope: laneScope, action: payload.action as DemandJob["status"] });
      return { status: 200, result: "accepted", detail: "lane event" };
    }
    let t: JobTransition | undefined;
    try {
      t = await this.o.jobs.record(job);
    } catch (err) {
      // Not handled: give the id back, so a redelivery (GitHub's "Redeliver") is not refused as a duplicate.
      await this.o.ledger.release(deliveryId).catch(() => undefined);
      return { status: 503, result: "failed", detail: `job store unavailable: ${(err as Error).message}` };
    }
    if (t !== undefined) this.o.onTransition?.(t);
    return { status: 200, result: "accepted", detail: t === undefined ? "no change" : `job ${job.id} ${t.after.status}` };
  }

  /** A node `http` request handler: caps the body (413 without reading it), then {@link handle}. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const reply = (status: number, detail: string, close = false): void => {
      if (res.headersSent) return;
      res.writeHead(status, { "content-type": "application/json", ...(close ? { connection: "close" } : {}) });
      res.end(`${JSON.stringify({ message: detail })}\n`);
    };
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const declared = Number(req.headers["content-length"] ?? "0");
    const tooLarge = (): void => {
      this.o.observer?.delivery("rejected", "too-large");
      this.o.log?.warn({ remote: req.socket.remoteAddress, status: 413 }, "webhook delivery refused: payload too large");
      reply(413, "payload too large", true);
      // Stop reading: the rest of the body is never taken in.
      res.once("finish", () => req.destroy());
    };
    if (path === this.path && Number.isFinite(declared) && declared > this.o.maxBodyBytes) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.byteLength;
      if (size > this.o.maxBodyBytes) {
        over = true;
        chunks.length = 0;
        req.pause();
        tooLarge();
        return;
      }
      chunks.push(c);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (over) return;
      void this.handle({ method: req.method ?? "", path, headers: req.headers, body: Buffer.concat(chunks), remote: req.socket.remoteAddress })
        .then((a) => reply(a.status, a.detail))
        .catch(() => reply(500, "internal error"));
    });
  };

  /** Listen on `listen` (`host:port`); answers the bound port and a `close`. */
  async listen(listen: string): Promise<{ readonly server: Server; readonly port: number; close(): Promise<void> }> {
    const i = listen.lastIndexOf(":");
    const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
    const port = Number(listen.slice(i + 1));
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, this.listener);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      });
    } catch (err) {
      throw new WebhookConfigError(`cannot listen for webhooks on ${listen} (coordinator.webhook.listen): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    const addr = server.address();
    return {
      server,
      port: typeof addr === "object" && addr !== null ? addr.port : port,
      close: () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    };
  }
}

/** The delivery id for a log line: only when it looks like one (no log injection). */
function safeDeliveryId(v: string | undefined): string | undefined {
  return v !== undefined && DELIVERY_ID.test(v) ? v : undefined;
}
