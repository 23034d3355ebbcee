import { instanceName } from "../audit/coordinator-audit.js";
import { CoordinatorMetrics, startMetricsServer } from "../metrics/coordinator-metrics.js";
import { LeaderLock } from "../serve/leader-lock.js";
import { DEFAULT_LEADER_TTL_MS } from "../serve/limits.js";
import { Reconciler } from "../serve/reconciler.js";
import { startDemandService, type DemandService } from "../serve/demand-service.js";
import { EphemeralExitWatch } from "../serve/ephemeral-exit-watch.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode } from "./exit-codes.js";
import { progressPrinter } from "./progress-printer.js";
import { exitCodeForReport, reportToText } from "./render-report.js";

/** Options of `lanekeeper serve`. */
export interface ServeCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** Reconcile interval (default: policy `coordinator.reconcileIntervalMs`). */
  readonly interval?: number;
  /** Serve Prometheus metrics on this port (`GET /metrics`, `GET /healthz`). */
  readonly metricsPort?: number;
  /** @default 0.0.0.0 */
  readonly metricsHost?: string;
  /** Leader lock TTL. @default DEFAULT_LEADER_TTL_MS */
  readonly lockTtl?: number;
  /** Offline-while-running grace before a health restart. */
  readonly offlineGrace?: number;
  /** Health restarts per lane per hour. */
  readonly maxRestarts?: number;
  /** Run one cycle (if this process can take the leader lock) and exit. */
  readonly once?: boolean;
  readonly inventoryWait?: number;
}

function untilStopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal !== undefined) {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
      return;
    }
    const done = (): void => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}

/**
 * `lanekeeper serve`: the long-running coordinator. Collects inventories, and while it holds the leader lock
 * (JetStream KV, TTL) reconciles every interval: observe, plan, apply, health-driven restarts. Prometheus metrics
 * on `--metrics-port`. SIGINT/SIGTERM finish the current cycle (a drain in progress is never cut short), release
 * the lock and exit 0. `--once` runs a single cycle and exits with the cycle's exit code.
 */
export async function runServe(opts: ServeCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  // A daemon: its service manager collects JSON log lines.
  return withCoordinator({ ...opts, logStyle: "json" }, io, deps, async (ctx, log) => {
    const instance = instanceName(io.env.LANEKEEPER_INSTANCE);
    const metrics = new CoordinatorMetrics(ctx.github);
    const lock = await LeaderLock.open(ctx.js, {
      ttlMs: opts.lockTtl ?? DEFAULT_LEADER_TTL_MS,
      replicas: ctx.policy.coordinator.jetstreamReplicas,
      instance,
      log,
      clock: ctx.clock,
      onChange: (leader) => metrics.setLeader(leader),
    });
    const server = opts.metricsPort === undefined ? undefined : await startMetricsServer(metrics, opts.metricsPort, opts.metricsHost);
    const progress = progressPrinter(io, { json: opts.json === true, quiet: false });
    // The reconciler is built after the demand sources (it plans from their store); pokes before that are dropped.
    const built: { reconciler?: Reconciler } = {};
    const poke = (reason: string): void => built.reconciler?.poke(reason);
    let demand: DemandService | undefined;
    try {
      demand = await startDemandService({
        policy: ctx.policy,
        js: ctx.js,
        github: ctx.github,
        env: io.env,
        poke,
        isLeader: () => lock.isLeader,
        metrics,
        log,
      });
    } catch (err) {
      await server?.close();
      throw err;
    }
    const exits = new EphemeralExitWatch();
    const unsubscribe = ctx.inventory.subscribe((s) => {
      for (const laneId of exits.exits(s.snapshot)) poke(`ephemeral lane ${laneId} idle (runner exited)`);
    });
    const reconciler = new Reconciler({
      ctx,
      lock,
      fence: ctx.fence,
      metrics,
      ...(opts.interval === undefined ? {} : { intervalMs: opts.interval }),
      clock: ctx.clock,
      log,
      health: {
        ...(opts.offlineGrace === undefined ? {} : { offlineGraceMs: opts.offlineGrace }),
        ...(opts.maxRestarts === undefined ? {} : { maxRestarts: opts.maxRestarts }),
      },
      onEvent: progress,
      jobs: demand.jobs,
    });
    built.reconciler = reconciler;
    try {
      if (server !== undefined) log.info({ port: server.port }, "metrics on /metrics");
      // A daemon outlives NATS trouble (a cluster electing leaders, an outage): the cycles report and retry it.
      await ctx.waitForInventories(opts.inventoryWait).catch((err: unknown) => {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, "could not wait for inventories at start; going on");
      });
      if (opts.once === true) {
        // Plan with demand the REST API confirmed, not only what webhooks happened to deliver so far.
        if (lock.isLeader || (await lock.ensure())) await demand.sync?.tick();
        const r = await reconciler.cycle();
        if (!r.leader) {
          io.err(`another coordinator holds the leader lock (${(await lock.holderInfo())?.instance ?? "?"}); nothing done\n`);
          return ExitCode.OK;
        }
        if (r.error !== undefined) throw new Error(r.error);
        const outcomes = [...(r.report?.outcomes ?? []), ...r.healthRestarts];
        const report = { planId: r.report?.planId ?? "", dryRun: false, outcomes, ok: outcomes.every((x) => x.status === "succeeded") };
        io.out(opts.json === true ? `${JSON.stringify({ ...report, capped: r.capped }, null, 2)}\n` : reportToText(report));
        return exitCodeForReport(report);
      }
      lock.start();
      reconciler.start();
      io.err(`lanekeeper serve (${instance}): reconciling every ${opts.interval ?? ctx.policy.coordinator.reconcileIntervalMs} ms while leader\n`);
      if (demand.webhookPort !== undefined) io.err(`lanekeeper serve (${instance}): GitHub webhooks on port ${demand.webhookPort}, path ${ctx.policy.coordinator.webhook?.path ?? ""}\n`);
      await untilStopped(deps.signal);
      return ExitCode.OK;
    } finally {
      unsubscribe();
      await reconciler.stop();
      await demand.stop();
      await lock.stop();
      await server?.close();
    }
  }, 0);
}
