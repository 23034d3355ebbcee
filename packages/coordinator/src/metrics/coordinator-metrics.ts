import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ApplyEvent, ApplyReport } from "../apply/apply-events.js";
import type { GitHubClient } from "../github/github-client.js";
import type { LaneView } from "../observe/classify.js";
import type { DemandJob, DemandSnapshot } from "../observe/demand.js";
import type { GroupSummary } from "../plan/plan-types.js";
import type { DeliveryRejection, DeliveryResult, WebhookObserver } from "../demand/webhook-receiver.js";

/** Buckets of the intent latency histogram, in seconds. */
const INTENT_LATENCY_BUCKETS: readonly number[] = Object.freeze([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);

/** Buckets of the queue wait histogram (job started − job created), in seconds. */
const QUEUE_WAIT_BUCKETS: readonly number[] = Object.freeze([1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]);

/** Webhook delivery results, so every result has a series from the first scrape. */
const DELIVERY_RESULTS: readonly DeliveryResult[] = ["accepted", "duplicate", "ignored", "rejected", "failed"];

/** Record states, so every state has a series (0 included) from the first scrape. */
const RECORD_STATES = ["creating", "active", "draining", "removing", "needs-attention", "orphaned"] as const;

/**
 * The coordinator's Prometheus metrics (prom-client, its own registry): lanes by state, drains, restarts, actions,
 * GitHub API calls and rate limit left, intent latency, leadership and reconcile cycles. Fed from apply events and
 * reconcile cycles; GitHub figures are read from the client at scrape time.
 */
export class CoordinatorMetrics implements WebhookObserver {
  readonly registry = new Registry();
  private readonly deliveries: Counter<"result">;
  private readonly rejections: Counter<"reason">;
  private readonly queuedJobs: Gauge<"scope">;
  private readonly runningJobs: Gauge<"scope">;
  private readonly queueWait: Histogram<"scope">;
  private readonly demandRestCalls: Counter<"operation">;
  private readonly demandPasses: Counter<"result">;
  private readonly demandReconciledAge: Gauge<"scope">;
  private readonly pokes: Counter;
  private readonly poolLanes: Gauge<"scope" | "pool" | "kind">;
  private readonly poolQueued: Gauge<"scope" | "pool">;
  private readonly lanes: Gauge<"state">;
  private readonly lanesByClass: Gauge<"class">;
  private readonly drains: Counter<"result">;
  private readonly restarts: Counter<"reason" | "result">;
  private readonly actions: Counter<"kind" | "status">;
  private readonly intentLatency: Histogram<"action" | "result">;
  private readonly leader: Gauge;
  private readonly cycles: Counter<"result">;
  private readonly cycleSeconds: Histogram;
  private readonly githubRequests: Counter;
  private readonly githubCalls: Counter<"operation">;
  private readonly githubNotModified: Counter;
  private readonly seen = { requests: 0, notModified: 0, calls: new Map<string, number>() };

  constructor(github?: Pick<GitHubClient, "metrics" | "rateLimit">) {
    const registers = [this.registry];
    this.lanes = new Gauge({ name: "lanekeeper_lanes", help: "Lanes by coordinator record state", labelNames: ["state"], registers });
    for (const s of RECORD_STATES) this.lanes.set({ state: s }, 0);
    this.lanesByClass = new Gauge({ name: "lanekeeper_lanes_by_class", help: "Lanes by ownership class (managed, orphaned, needs-attention)", labelNames: ["class"], registers });
    this.drains = new Counter({ name: "lanekeeper_drains_total", help: "Drain waits, by how they ended (idle, deadline, forced)", labelNames: ["result"], registers });
    this.restarts = new Counter({ name: "lanekeeper_restarts_total", help: "Lane restarts by reason (planned, offline, crash-loop) and result", labelNames: ["reason", "result"], registers });
    this.actions = new Counter({ name: "lanekeeper_actions_total", help: "Apply actions by kind and outcome", labelNames: ["kind", "status"], registers });
    this.intentLatency = new Histogram({
      name: "lanekeeper_intent_latency_seconds",
      help: "Time from sending an intent to its verified signed result",
      labelNames: ["action", "result"],
      buckets: [...INTENT_LATENCY_BUCKETS],
      registers,
    });
    this.leader = new Gauge({ name: "lanekeeper_leader", help: "1 while this coordinator holds the leader lock", registers });
    this.cycles = new Counter({ name: "lanekeeper_reconcile_cycles_total", help: "Reconcile cycles by result (ok, failed, follower)", labelNames: ["result"], registers });
    this.cycleSeconds = new Histogram({ name: "lanekeeper_reconcile_duration_seconds", help: "Duration of reconcile cycles", buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800], registers });
    this.deliveries = new Counter({ name: "lanekeeper_webhook_deliveries_total", help: "Webhook deliveries by result (accepted, duplicate, ignored, rejected, failed)", labelNames: ["result"], registers });
    for (const r of DELIVERY_RESULTS) this.deliveries.inc({ result: r }, 0);
    this.rejections = new Counter({ name: "lanekeeper_webhook_rejections_total", help: "Rejected webhook deliveries by reason (signature, too-large, malformed, method, path)", labelNames: ["reason"], registers });
    this.rejections.inc({ reason: "signature" }, 0);
    this.queuedJobs = new Gauge({ name: "lanekeeper_queued_jobs", help: "Workflow jobs queued (no runner yet) per scope, as of the last cycle", labelNames: ["scope"], registers });
    this.runningJobs = new Gauge({ name: "lanekeeper_running_jobs", help: "Workflow jobs in progress per scope, as of the last cycle", labelNames: ["scope"], registers });
    this.queueWait = new Histogram({
      name: "lanekeeper_job_queue_wait_seconds",
      help: "Time from a workflow job being queued to a runner starting it",
      labelNames: ["scope"],
      buckets: [...QUEUE_WAIT_BUCKETS],
      registers,
    });
    this.demandRestCalls = new Counter({ name: "lanekeeper_demand_rest_calls_total", help: "GitHub REST calls of the demand reconciliation, by operation", labelNames: ["operation"], registers });
    this.demandPasses = new Counter({ name: "lanekeeper_demand_reconcile_passes_total", help: "REST reconciliation passes per scope, by result (ok, failed, deferred)", labelNames: ["result"], registers });
    this.demandReconciledAge = new Gauge({ name: "lanekeeper_demand_reconciled_age_seconds", help: "Per scope, seconds since the REST reconciliation last confirmed its jobs", labelNames: ["scope"], registers });
    this.poolLanes = new Gauge({
      name: "lanekeeper_pool_lanes",
      help: "Queue-driven pools, as of the last plan: lanes wanted, and lanes busy, idle or starting",
      labelNames: ["scope", "pool", "kind"],
      registers,
    });
    this.poolQueued = new Gauge({ name: "lanekeeper_pool_queued_jobs", help: "Queue-driven pools, as of the last plan: queued jobs no lane has taken", labelNames: ["scope", "pool"], registers });
    this.pokes = new Counter({ name: "lanekeeper_reconcile_pokes_total", help: "Reconcile cycles asked for by an event (webhook, runner exit) instead of the interval", registers });
    this.githubRequests = new Counter({ name: "lanekeeper_github_requests_total", help: "HTTP requests sent to GitHub", registers });
    this.githubNotModified = new Counter({ name: "lanekeeper_github_not_modified_total", help: "GitHub responses 304 (free: no rate limit spent)", registers });
    this.githubCalls = new Counter({ name: "lanekeeper_github_calls_total", help: "GitHub client calls by operation", labelNames: ["operation"], registers });
    const self = this.seen;
    const reqs = this.githubRequests;
    const nm = this.githubNotModified;
    const calls = this.githubCalls;
    new Gauge({
      name: "lanekeeper_github_rate_limit_remaining",
      help: "GitHub API requests left in the current window (as last reported)",
      registers,
      collect() {
        if (github === undefined) return;
        const rl = github.rateLimit();
        if (rl.remaining !== undefined) this.set(rl.remaining);
        // Counters from the client's cumulative figures, advanced by what changed since the last scrape.
        const m = github.metrics();
        if (m.requests > self.requests) reqs.inc(m.requests - self.requests);
        self.requests = Math.max(self.requests, m.requests);
        if (m.notModified > self.notModified) nm.inc(m.notModified - self.notModified);
        self.notModified = Math.max(self.notModified, m.notModified);
        for (const [op, n] of Object.entries(m.calls)) {
          const prev = self.calls.get(op) ?? 0;
          if (n > prev) calls.inc({ operation: op }, n - prev);
          self.calls.set(op, Math.max(prev, n));
        }
      },
    });
    new Gauge({
      name: "lanekeeper_github_rate_limit_reserve_active",
      help: "1 while the rate-limit reserve holds back everything but removals",
      registers,
      collect() {
        if (github !== undefined) this.set(github.rateLimit().reserveActive ? 1 : 0);
      },
    });
  }

  /** Feed one apply event. */
  readonly onEvent = (e: ApplyEvent): void => {
    switch (e.type) {
      case "intent":
        this.intentLatency.observe({ action: e.action, result: e.result }, e.latencyMs / 1000);
        return;
      case "action-end": {
        const o = e.outcome;
        this.actions.inc({ kind: o.kind, status: o.status });
        if (o.stepsDone.includes("wait-idle")) this.drains.inc({ result: o.forcedBy === undefined ? "idle" : "forced" });
        else if (o.code === "DRAIN_DEADLINE") this.drains.inc({ result: "deadline" });
        return;
      }
      default:
        return;
    }
  };

  /** Count a restart (planned by the planner, or health-driven). */
  restart(reason: "planned" | "offline" | "crash-loop", result: string): void {
    this.restarts.inc({ reason, result });
  }

  /** Count the planned restarts of a report. */
  report(report: ApplyReport): void {
    for (const o of report.outcomes) if (o.kind === "restart") this.restart("planned", o.status);
  }

  /** Lanes by record state and by class, from a cycle's classification. */
  lanesObserved(views: readonly LaneView[]): void {
    const byState = new Map<string, number>(RECORD_STATES.map((s) => [s, 0]));
    const byClass = new Map<string, number>([
      ["managed", 0],
      ["orphaned", 0],
      ["needs-attention", 0],
    ]);
    for (const v of views) {
      if (v.record !== undefined) byState.set(v.record.state, (byState.get(v.record.state) ?? 0) + 1);
      byClass.set(v.class, (byClass.get(v.class) ?? 0) + 1);
    }
    for (const [state, n] of byState) this.lanes.set({ state }, n);
    for (const [c, n] of byClass) this.lanesByClass.set({ class: c }, n);
  }

  /** Leadership now. */
  setLeader(leader: boolean): void {
    this.leader.set(leader ? 1 : 0);
  }

  /** One reconcile cycle ended. */
  cycle(result: "ok" | "failed" | "follower", seconds: number): void {
    this.cycles.inc({ result });
    if (result !== "follower") this.cycleSeconds.observe(seconds);
  }

  /** One webhook delivery ended ({@link WebhookObserver}). */
  delivery(result: DeliveryResult, reason?: DeliveryRejection): void {
    this.deliveries.inc({ result });
    if (reason !== undefined) this.rejections.inc({ reason });
  }

  /** Queued and running jobs per scope, from the demand a cycle planned with. */
  demandObserved(d: DemandSnapshot, nowMs: number): void {
    const queued = new Map<string, number>();
    const running = new Map<string, number>();
    for (const j of d.jobs) {
      if (j.status === "queued") queued.set(j.scope, (queued.get(j.scope) ?? 0) + 1);
      else if (j.status === "in_progress") running.set(j.scope, (running.get(j.scope) ?? 0) + 1);
    }
    const scopes = new Set([...queued.keys(), ...running.keys(), ...Object.keys(d.reconciledAtMs)]);
    this.queuedJobs.reset();
    this.runningJobs.reset();
    this.demandReconciledAge.reset();
    for (const s of scopes) {
      this.queuedJobs.set({ scope: s }, queued.get(s) ?? 0);
      this.runningJobs.set({ scope: s }, running.get(s) ?? 0);
      const at = d.reconciledAtMs[s];
      if (at !== undefined) this.demandReconciledAge.set({ scope: s }, Math.max(0, (nowMs - at) / 1000));
    }
  }

  /** Wanted, busy, idle and starting lanes and untaken queued jobs of each queue-driven pool a cycle planned. */
  poolsPlanned(groups: readonly GroupSummary[]): void {
    this.poolLanes.reset();
    this.poolQueued.reset();
    for (const g of groups) {
      const s = g.scaling;
      if (s === undefined) continue;
      const at = { scope: g.scope, pool: g.pool };
      this.poolQueued.set(at, s.queued);
      for (const [kind, n] of [["wanted", s.wanted], ["busy", s.running], ["idle", s.idle], ["starting", s.starting]] as const) this.poolLanes.set({ ...at, kind }, n);
    }
  }

  /** A job was seen started for the first time: its queue wait. */
  jobStarted(job: DemandJob): void {
    if (job.startedAtMs === undefined) return;
    this.queueWait.observe({ scope: job.scope }, Math.max(0, (job.startedAtMs - job.createdAtMs) / 1000));
  }

  /** REST calls one demand reconciliation made. */
  demandRest(operation: string, calls = 1): void {
    this.demandRestCalls.inc({ operation }, calls);
  }

  /** One scope's REST reconciliation pass ended. */
  demandPass(result: "ok" | "failed" | "deferred"): void {
    this.demandPasses.inc({ result });
  }

  /** A poke asked for a cycle. */
  poke(): void {
    this.pokes.inc();
  }

  /** The metrics in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A small HTTP server for `GET /metrics` (Prometheus text format) and `GET /healthz`. */
export async function startMetricsServer(metrics: CoordinatorMetrics, port: number, host = "0.0.0.0"): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      metrics
        .text()
        .then((body) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
      return;
    }
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    server,
    port: typeof addr === "object" && addr !== null ? addr.port : port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
