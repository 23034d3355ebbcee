import { instanceName } from "../audit/coordinator-audit.js";
import { enrolledHostsFromPolicy } from "../context/coordinator-context.js";
import { demandScopes } from "../demand/demand-scopes.js";
import { hasJobReads } from "../github/github-jobs.js";
import { CoordinatorMetrics, startMetricsServer } from "../metrics/coordinator-metrics.js";
import { LeaderLock } from "../serve/leader-lock.js";
import { DEFAULT_LEADER_TTL_MS } from "../serve/limits.js";
import { Reconciler } from "../serve/reconciler.js";
import { startDemandService, type DemandService } from "../serve/demand-service.js";
import { EphemeralExitWatch } from "../serve/ephemeral-exit-watch.js";
import { PolicyReloader } from "../serve/policy-reload.js";
import { shortDigest } from "../serve/policy-revision.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode } from "./exit-codes.js";
import { policyPath } from "./policy-file.js";
import { progressPrinter } from "./progress-printer.js";
import { exitCodeForReport, reportToText } from "./render-report.js";
import { freshViewGate, NatsLink } from "../context/nats-link.js";
import { NatsOpening } from "../context/nats-opening.js";
import { DEFAULT_NATS_OPEN_WAIT_MS } from "../limits.js";
import { DEFAULT_INVENTORY_WAIT_MS } from "../apply/limits.js";

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
    // The reconciler is built after the demand sources (it plans from their store); pokes before that are dropped.
    const built: { reconciler?: Reconciler; lock?: LeaderLock; demand?: DemandService } = {};
    const poke = (reason: string): void => built.reconciler?.poke(reason);
    // The running policy: reloaded on SIGHUP and when the file changes (docs/cluster.md, "Policy reload").
    const reloader = new PolicyReloader({
      path: policyPath(opts.policy, io.env, io.cwd),
      initial: ctx.policy,
      registry: metrics.registry,
      clock: ctx.clock,
      log,
      // Hosts enrolled or removed by the new policy: intents and inventories are verified against it from now on.
      apply: (next) => ctx.hosts.replace(enrolledHostsFromPolicy(next)),
      restartNeeded: (next) =>
        built.demand !== undefined && built.demand.sync === undefined && demandScopes(next).length > 0 && hasJobReads(ctx.github)
          ? "lanes[].scaling (the first queue-driven lane entry: the demand REST reconciliation starts with serve)"
          : undefined,
      onPublished: (_revision, reloaded) => {
        // Publish at once rather than at the next renewal, and act on a new policy without waiting an interval.
        if (built.lock?.isLeader === true) void built.lock.ensure();
        if (reloaded) poke("policy reloaded");
      },
      // What an operator who saved the file or sent SIGHUP looks for, at the default log level (a refusal is a
      // warning log line with every problem).
      onResult: (r, trigger) => {
        const who = `lanekeeper serve (${instance})`;
        if (r.status === "reloaded") io.err(`${who}: policy reloaded (${trigger}): now running ${shortDigest(r.revision.digest)}\n`);
        else if (r.status === "refused") io.err(`${who}: policy reload failed (${trigger}): ${r.error.message}; still running ${shortDigest(r.revision.digest)}\n`);
        else if (trigger === "SIGHUP") io.err(`${who}: policy reload (SIGHUP): unchanged, running ${shortDigest(r.revision.digest)}\n`);
      },
    });
    // NATS trouble (a lost connection, an unanswered lock renewal) keeps serve from acting until its view is fresh.
    const link = new NatsLink(ctx.nc, { clock: ctx.clock, log });
    const opening = new NatsOpening({ servers: ctx.policy.coordinator.natsServers, waitMs: DEFAULT_NATS_OPEN_WAIT_MS, clock: ctx.clock, log });
    const lock = await opening.run("open the leader lock", () =>
      LeaderLock.open(ctx.js, {
        ttlMs: opts.lockTtl ?? DEFAULT_LEADER_TTL_MS,
        replicas: ctx.policy.coordinator.jetstreamReplicas,
        instance,
        log,
        clock: ctx.clock,
        onChange: (leader) => metrics.setLeader(leader),
        onUnavailable: (err) => link.trouble(`leader lock: ${err instanceof Error ? err.message : String(err)}`),
        policy: () => reloader.published(),
      }),
    );
    built.lock = lock;
    const server = opts.metricsPort === undefined ? undefined : await startMetricsServer(metrics, opts.metricsPort, opts.metricsHost);
    const progress = progressPrinter(io, { json: opts.json === true, quiet: false });
    let demand: DemandService | undefined;
    try {
      demand = await opening.run("open the demand sources", () => startDemandService({
        // Read at each use: scopes to reconcile and accept webhooks for follow the reloaded policy.
        get policy() {
          return reloader.current;
        },
        js: ctx.js,
        github: ctx.github,
        env: io.env,
        poke,
        isLeader: () => lock.isLeader,
        metrics,
        log,
      }));
    } catch (err) {
      await server?.close();
      throw err;
    }
    built.demand = demand;
    const exits = new EphemeralExitWatch();
    const unsubscribe = ctx.inventory.subscribe((s) => {
      for (const laneId of exits.exits(s.snapshot)) poke(`ephemeral lane ${laneId} idle (runner exited)`);
    });
    const reconciler = new Reconciler({
      ctx,
      policy: () => reloader.current,
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
      ready: freshViewGate({ link, inventory: ctx.inventory, policy: { get hosts() { return reloader.current.hosts; } }, waitMs: opts.inventoryWait ?? DEFAULT_INVENTORY_WAIT_MS, clock: ctx.clock, log }),
    });
    built.reconciler = reconciler;
    let stopHup = (): void => undefined;
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
      const hup = (): void => void reloader.reload("SIGHUP");
      process.on("SIGHUP", hup);
      stopHup = () => process.off("SIGHUP", hup);
      reloader.watch();
      // A change between reading the policy at start and watching it is not missed.
      await reloader.reload("start");
      io.err(`lanekeeper serve (${instance}): running policy ${shortDigest(reloader.published().digest)} from ${policyPath(opts.policy, io.env, io.cwd)}; it is reloaded when the file changes and on SIGHUP\n`);
      lock.start();
      reconciler.start();
      io.err(`lanekeeper serve (${instance}): reconciling every ${opts.interval ?? ctx.policy.coordinator.reconcileIntervalMs} ms while leader\n`);
      if (demand.webhookPort !== undefined) io.err(`lanekeeper serve (${instance}): GitHub webhooks on port ${demand.webhookPort}, path ${ctx.policy.coordinator.webhook?.path ?? ""}\n`);
      await untilStopped(deps.signal);
      return ExitCode.OK;
    } finally {
      stopHup();
      await reloader.close();
      unsubscribe();
      await reconciler.stop();
      await demand.stop();
      await lock.stop();
      await server?.close();
    }
  }, 0);
}
