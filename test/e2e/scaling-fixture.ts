// Helpers of the scaling end-to-end suite (issue 13): a real fleet whose policy has `scaling` lane groups, a
// `lanekeeper serve` child process with its `workflow_job` webhook endpoint, and a webhook relay between the
// GitHub emulator and that endpoint. The relay is GitHub's delivery network as the peers' trackers describe it:
// it records when each delivery arrived (so a test can compare a create's audit time with it), and on a test's
// request drops a delivery, delivers it again with the same `X-GitHub-Delivery` (GitHub's "Redeliver"), or sends
// the same event again as a new delivery. The emulator's own realism (busy lag, a killed runner staying online,
// randomly lost and late deliveries) stays on underneath.
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import type { AuditRecord } from "@lanekeeper/shared";
import { COORDINATOR_BIN, terminate, type Fleet, type JobView, type RunnerView } from "@lanekeeper/harness";
import { eventually } from "./e2e-fixture.js";

/** Environment variable the policy names for the webhook secret (`coordinator.webhook.secretEnv`). */
export const WEBHOOK_SECRET_ENV = "LK_WEBHOOK_SECRET";

/** A `scaling` lane group of the suite's policy (policy `lanes[].scaling`). */
export interface ScalingLane {
  scope: string;
  pool: string;
  hosts: string[];
  scaling: {
    min: number;
    max: number;
    idle?: number;
    scaleDownAfter?: string;
    schedules?: { name: string; cron: string; duration: string; timezone?: string; min: number; idle?: number }[];
  };
}

/** A free TCP port on the loopback interface (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Writes the scaling parts into the fleet's policy: the webhook endpoint `serve` opens, the REST reconciliation
 * budget of demand, and the lane groups (replacing the fleet's `lanes`).
 */
export async function writeScalingPolicy(fleet: Fleet, o: { webhookPort: number; restIntervalMs: number; lanes: readonly ScalingLane[] }): Promise<void> {
  await fleet.editPolicy((doc) => {
    const coordinator = (doc.coordinator ?? {}) as Record<string, unknown>;
    coordinator.webhook = { listen: `127.0.0.1:${o.webhookPort}`, path: "/github/webhook", secretEnv: WEBHOOK_SECRET_ENV };
    coordinator.demand = { restIntervalMs: o.restIntervalMs };
    doc.coordinator = coordinator;
    doc.lanes = o.lanes.map((l) => ({ scope: l.scope, pool: l.pool, hosts: l.hosts, scaling: l.scaling }));
  });
}

// ---------------------------------------------------------------------------------------------------------
// The webhook relay

/** A delivery that reached the relay. */
export interface RelayedDelivery {
  /** `X-GitHub-Delivery`. */
  id: string;
  event: string;
  /** `queued`, `in_progress`, `completed`. */
  action: string;
  jobId: number | undefined;
  /** The job's `runs-on` labels. */
  labels: string[];
  /** When the relay received it (ms since the epoch). */
  receivedAt: number;
  /** What the relay did with it. */
  fate: "forwarded" | "dropped" | "redelivered" | "resent";
  /** The receiver's answer (0: not reachable). */
  status?: number;
}

interface Captured {
  headers: Record<string, string>;
  body: Buffer;
}

/** Which delivery a drop rule takes: by job id, or the next one whose job asks for a label. */
export type DeliveryMatch = { jobId: number } | { label: string };

interface DropRule {
  action: string;
  match: DeliveryMatch;
}

const HOP_BY_HOP = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"]);

/** The relay between the emulator's webhook sender and `serve`'s endpoint (see the module comment). */
export class WebhookRelay {
  readonly deliveries: RelayedDelivery[] = [];
  private readonly captured = new Map<string, Captured>();
  private readonly drops: DropRule[] = [];
  private target: string | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly secret: string,
  ) {}

  /** Starts the relay on a free loopback port. */
  static async start(secret: string): Promise<WebhookRelay> {
    const holder: { relay?: WebhookRelay } = {};
    const server = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        const status = holder.relay ? await holder.relay.onDelivery(req, body) : 503;
        res.writeHead(status).end();
      })().catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const a = server.address();
    const port = typeof a === "object" && a !== null ? a.port : 0;
    const relay = new WebhookRelay(server, `http://127.0.0.1:${port}/relay`, secret);
    holder.relay = relay;
    return relay;
  }

  /** Where deliveries go on (`serve`'s endpoint); undefined: answer 502 as an unreachable endpoint would. */
  setTarget(url: string | undefined): void {
    this.target = url;
  }

  /** The next delivery of `action` that matches is dropped: `serve` never sees it, GitHub records a failure. */
  dropNext(action: "queued" | "in_progress" | "completed", match: DeliveryMatch): void {
    this.drops.push({ action, match });
  }

  /** Deliveries of `action` for `jobId` that reached the relay. */
  of(action: string, jobId: number): RelayedDelivery[] {
    return this.deliveries.filter((d) => d.action === action && d.jobId === jobId);
  }

  /** Waits until a delivery of `action` for `jobId` reached the relay; returns the first. */
  waitFor(action: string, jobId: number, timeoutMs = 30_000): Promise<RelayedDelivery> {
    return eventually(() => Promise.resolve(this.of(action, jobId)[0]), `the ${action} delivery of job ${jobId}`, timeoutMs, 100);
  }

  /** GitHub's "Redeliver": the same request again, same `X-GitHub-Delivery`, same signature. */
  async redeliver(id: string): Promise<number> {
    const c = this.captured.get(id);
    if (!c) throw new Error(`no captured delivery ${id}`);
    return this.forward(c, "redelivered");
  }

  /** The same event as a new delivery: a fresh `X-GitHub-Delivery`, signed again. */
  async resendAsNew(id: string): Promise<number> {
    const c = this.captured.get(id);
    if (!c) throw new Error(`no captured delivery ${id}`);
    const headers: Record<string, string> = { ...c.headers, "x-github-delivery": randomUUID() };
    headers["x-hub-signature-256"] = `sha256=${createHmac("sha256", this.secret).update(c.body).digest("hex")}`;
    delete headers["x-hub-signature"];
    return this.forward({ headers, body: c.body }, "resent");
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async onDelivery(req: IncomingMessage, body: Buffer): Promise<number> {
    const headers: Record<string, string> = {};
    // Hop-by-hop headers stay here; GitHub's own (event, delivery, signatures) travel on.
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && !HOP_BY_HOP.has(k)) headers[k] = v;
    const c = { headers, body };
    const d = describe(c, "forwarded");
    this.captured.set(d.id, c);
    const rule = this.drops.findIndex((r) => r.action === d.action && matches(r.match, d));
    if (rule >= 0) {
      this.drops.splice(rule, 1);
      this.deliveries.push({ ...d, fate: "dropped" });
      // GitHub saw a failed delivery; the receiver saw nothing.
      return 504;
    }
    return this.forward(c, "forwarded", d);
  }

  private async forward(c: Captured, fate: RelayedDelivery["fate"], d = describe(c, fate)): Promise<number> {
    const record: RelayedDelivery = { ...d, fate };
    this.deliveries.push(record);
    if (this.target === undefined) {
      record.status = 0;
      return 502;
    }
    try {
      const res = await fetch(this.target, { method: "POST", headers: c.headers, body: c.body, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      record.status = res.status;
      return res.status;
    } catch {
      record.status = 0;
      return 502;
    }
  }
}

function matches(m: DeliveryMatch, d: RelayedDelivery): boolean {
  return "jobId" in m ? d.jobId === m.jobId : d.labels.some((l) => l.toLowerCase() === m.label.toLowerCase());
}

function describe(c: Captured, fate: RelayedDelivery["fate"]): RelayedDelivery {
  let action = "";
  let jobId: number | undefined;
  let labels: string[] = [];
  try {
    const p = JSON.parse(c.body.toString("utf8")) as { action?: string; workflow_job?: { id?: number; labels?: string[] } };
    action = p.action ?? "";
    jobId = p.workflow_job?.id;
    labels = p.workflow_job?.labels ?? [];
  } catch {
    // Not JSON: recorded as it is, forwarded as it is.
  }
  return { id: c.headers["x-github-delivery"] ?? "", event: c.headers["x-github-event"] ?? "", action, jobId, labels, receivedAt: Date.now(), fate };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------------------
// `lanekeeper serve`

/** A running `lanekeeper serve`. */
export interface ServeHandle {
  /** Its webhook endpoint. */
  webhookUrl: string;
  /** Its stdout and stderr (JSON log lines). */
  logPath: string;
  /** SIGTERM; resolves when it exited (SIGKILL after a grace period). */
  stop(): Promise<void>;
  readonly child: ChildProcess;
}

const SETPRIV = "/usr/bin/setpriv";

/**
 * Starts `lanekeeper serve --interval <ms>` with the fleet's policy and the webhook secret in its environment, and
 * resolves once its webhook endpoint answers and its first reconcile loop started.
 */
export async function startServe(fleet: Fleet, o: { intervalMs: number; webhookPort: number; secret: string; instance?: string }): Promise<ServeHandle> {
  const logPath = join(fleet.dir, `serve-${o.instance ?? "a"}-${Date.now()}.log`);
  const log = await open(logPath, "a", 0o600);
  const argv = [COORDINATOR_BIN, "serve", "--interval", String(o.intervalMs), "--inventory-wait", "10000"];
  // The kernel kills it if the test worker dies without running its afterAll hooks.
  const [cmd, args] = existsSync(SETPRIV) ? [SETPRIV, ["--pdeathsig", "KILL", "--", process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(cmd, args, {
    cwd: fleet.dir,
    env: { ...process.env, ...fleet.coordinatorEnv, [WEBHOOK_SECRET_ENV]: o.secret, LANEKEEPER_INSTANCE: o.instance ?? "scaling-e2e" },
    stdio: ["ignore", log.fd, log.fd],
  });
  await log.close();
  const webhookUrl = `http://127.0.0.1:${o.webhookPort}/github/webhook`;
  const handle: ServeHandle = {
    webhookUrl,
    logPath,
    child,
    async stop() {
      await terminate(child, { graceMs: 60_000 });
    },
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`lanekeeper serve exited ${child.exitCode}: ${(await readFile(logPath, "utf8")).slice(-3000)}`);
        const text = await readFile(logPath, "utf8");
        if (!text.includes("reconciling every")) return false;
        // Any HTTP answer (an unsigned POST is refused) means the endpoint listens.
        const res = await fetch(webhookUrl, { method: "POST", body: "{}", signal: AbortSignal.timeout(2000) }).catch(() => undefined);
        return res !== undefined;
      },
      "lanekeeper serve to listen and reconcile",
      90_000,
      300,
    );
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

/** A random webhook secret. */
export function webhookSecret(): string {
  return randomBytes(24).toString("base64url");
}

// ---------------------------------------------------------------------------------------------------------
// Reading what happened

/**
 * The coordinator's audit records while `serve` appends to the file: complete lines only (a line being written
 * is left for the next read). The chain itself is verified once serve stopped (`auditChain`).
 */
export async function coordinatorRecords(fleet: Fleet): Promise<AuditRecord[]> {
  const text = await readFile(fleet.auditPath, "utf8").catch(() => "");
  const lines = text.split("\n");
  lines.pop();
  return lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as AuditRecord).filter((r) => r.source === "coordinator");
}

/** The coordinator's audit records of `action` `phase` for `pool`. */
export async function auditOf(fleet: Fleet, pool: string, action: string, phase: AuditRecord["phase"] = "planned"): Promise<AuditRecord[]> {
  return (await coordinatorRecords(fleet)).filter((r) => r.action === action && r.phase === phase && poolOf(r) === pool);
}

function poolOf(r: AuditRecord): string | undefined {
  const p = r.details?.pool;
  return typeof p === "string" ? p : undefined;
}

/** One planned operation of the coordinator and how it ended (joined on its operation id). */
export interface OperationView {
  action: string;
  laneId: string;
  operationId: string;
  plannedAt: number;
  /** When its `succeeded` record was written; undefined while running or when it did not succeed. */
  succeededAt: number | undefined;
  /** The planner's reason, as the `planned` record carries it. */
  message: string;
  reasonCode: string;
}

/** Planned `actions` for `pool` from `sinceMs` on, oldest first, with their end. */
export async function operations(fleet: Fleet, pool: string, actions: readonly string[], sinceMs = 0): Promise<OperationView[]> {
  const recs = await coordinatorRecords(fleet);
  const ends = new Map<string, number>();
  for (const r of recs) if (r.phase === "succeeded" && r.operationId !== undefined) ends.set(r.operationId, r.at);
  return recs
    .filter((r) => r.phase === "planned" && actions.includes(r.action) && poolOf(r) === pool && r.at >= sinceMs)
    .map((r) => ({
      action: r.action,
      laneId: r.laneId ?? "",
      operationId: r.operationId ?? "",
      plannedAt: r.at,
      succeededAt: ends.get(r.operationId ?? ""),
      message: r.message ?? "",
      reasonCode: typeof r.details?.reasonCode === "string" ? r.details.reasonCode : "",
    }));
}

/** Lane ids the coordinator created for `pool` (planned creates). */
export async function createdLanes(fleet: Fleet, pool: string): Promise<string[]> {
  return (await auditOf(fleet, pool, "create")).map((r) => r.laneId ?? "");
}

/** Registrations on GitHub of `pool`'s lanes (by their unique lane label, so draining lanes count too). */
export async function poolRunners(fleet: Fleet, pool: string): Promise<RunnerView[]> {
  const ids = new Set(await createdLanes(fleet, pool));
  return (await fleet.github.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lk-lane-") && ids.has(l.slice("lk-lane-".length))));
}

/**
 * Lanes of `pool` that exist now: created and not yet removed successfully. Lane ids are never reused, so a
 * succeeded `remove` ends a lane for good.
 */
export async function liveLanes(fleet: Fleet, pool: string): Promise<string[]> {
  const created = await createdLanes(fleet, pool);
  const removed = new Set((await coordinatorRecords(fleet)).filter((r) => r.action === "remove" && r.phase === "succeeded").map((r) => r.laneId));
  return created.filter((id) => !removed.has(id));
}

/** Queue-wait and run times of jobs, for the suite's report. */
export function jobTimes(j: JobView): { waitS: number; runS: number } {
  const created = Date.parse(j.createdAt);
  const started = j.startedAt === null ? NaN : Date.parse(j.startedAt);
  const completed = j.completedAt === null ? NaN : Date.parse(j.completedAt);
  return { waitS: (started - created) / 1000, runS: (completed - started) / 1000 };
}

/** Samples `probe` every `stepMs` until `stop` resolves; returns the largest value seen. */
export async function peakWhile(probe: () => Promise<number>, stop: Promise<unknown>, stepMs = 500): Promise<number> {
  let done = false;
  void stop.finally(() => (done = true));
  let peak = 0;
  while (!done) {
    peak = Math.max(peak, await probe().catch(() => 0));
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Math.max(peak, await probe().catch(() => 0));
}

/** The tail of serve's log, for failure messages. */
export async function serveLogTail(h: ServeHandle | undefined, bytes = 6000): Promise<string> {
  if (!h) return "";
  return (await readFile(h.logPath, "utf8").catch(() => "")).slice(-bytes);
}
