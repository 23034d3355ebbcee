import { resolve } from "node:path";
import type { Policy } from "@lanekeeper/shared";
import { CoordinatorKeyError, NatsUnavailableError } from "../context/coordinator-context.js";
import { PLAN_NATS_WAIT_MS } from "../limits.js";
import { createGitHubClient } from "../github/github-client-from-policy.js";
import { observeScopes } from "../observe/github-observer.js";
import { observeRunnerReleases } from "../observe/runner-releases.js";
import { emptyInventory } from "../observe/inventory-view.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import { coordinatorKeyGap, natsUnreachableGap, recordsFileGap, viewGaps, type ViewGap } from "../observe/view-gaps.js";
import { plan } from "../plan/planner.js";
import type { Plan } from "../plan/plan-types.js";
import { formatSavedPlan, makeSavedPlan } from "../plan/saved-plan.js";
import type { CliIo } from "./cli-io.js";
import { cliLogger } from "./cli-logger.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { planExitCode } from "./exit-codes.js";
import { policyRevisionView, readLeaderRecord } from "../serve/policy-revision.js";
import { parseLaneRecordsJson } from "./lane-records-file.js";
import { livePlan } from "./live-plan.js";
import { policyPath, readPolicyFile, readSmallText, writeTextAtomic } from "./policy-file.js";
import { degradedLines, planToJson, planToText, type PlanContext } from "./render-plan.js";

/** Options of `lanekeeper plan`. */
export interface PlanCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** A JSON copy of the lane records to plan against (until the lane store is wired in). */
  readonly records?: string;
  readonly maxRemovals?: number;
  readonly maxCreates?: number;
  readonly rateLimitReserve?: number;
  /** How long to wait for fresh agent inventories before planning. */
  readonly inventoryWait?: number;
  /** Exit 0 for no changes and 2 for changes, as terraform's `-detailed-exitcode` (see `planExitCode`). */
  readonly detailedExitcode?: boolean;
  /** Write the plan to this file for `lanekeeper apply <file>` (not written from a degraded view). */
  readonly out?: string;
  /** How long the saved plan may be applied (ms). @default DEFAULT_SAVED_PLAN_TTL_MS */
  readonly expiresIn?: number;
}

/** Injected for tests (e.g. to watch GitHub requests, or to open the coordinator). */
export type PlanCommandDeps = Pick<CoordinatorCliDeps, "fetch" | "open">;

/**
 * `lanekeeper plan`: observe, classify, plan, print; changes nothing. With NATS reachable it plans from exactly
 * what `apply --dry-run` sees (lane records in the KV store and the agents' live inventories), so the plan shown
 * is the plan apply would run. Without NATS or the coordinator key, or with `--records`, it plans from GitHub
 * alone and says so.
 */
export async function runPlan(opts: PlanCommandOptions, io: CliIo, deps: PlanCommandDeps = {}): Promise<number> {
  if (opts.records === undefined) {
    try {
      // Plan has a fallback (a GitHub-only plan, marked DEGRADED): it waits out a short NATS blip, not an outage.
      return await withCoordinator({ ...opts, natsWait: PLAN_NATS_WAIT_MS }, io, deps, async (ctx) => {
        const { plan: p, planCtx } = await livePlan(ctx, opts);
        const policy = policyRevisionView(ctx.policy, await readLeaderRecord(ctx.js));
        return finishPlan(p, { ...planCtx, policy }, { policy: ctx.policy, path: policyPath(opts.policy, io.env, io.cwd) }, opts, io);
      });
    } catch (err) {
      // `plan` signs nothing, so a machine without the coordinator's key or NATS can still show a GitHub-only plan,
      // marked DEGRADED: without records and inventories no lane's host is seen.
      if (!(err instanceof NatsUnavailableError || err instanceof CoordinatorKeyError)) throw err;
      const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
      const gap =
        err instanceof CoordinatorKeyError
          ? coordinatorKeyGap(file.policy.coordinator.keyFile, err.message)
          : natsUnreachableGap(file.policy.coordinator.natsUrl, err.message);
      return runOfflinePlan(opts, io, deps, gap);
    }
  }
  return runOfflinePlan(opts, io, deps);
}

/**
 * Print the plan, the DEGRADED lines (stderr) when the view has gaps, write `--out`, and choose the exit code
 * ({@link planExitCode}).
 */
async function finishPlan(
  p: Plan,
  planCtx: PlanContext,
  policy: { readonly policy: Policy; readonly path: string },
  opts: PlanCommandOptions,
  io: CliIo,
): Promise<number> {
  const gaps = planCtx.gaps ?? [];
  io.out(opts.json === true ? `${JSON.stringify(planToJson(p, planCtx), null, 2)}\n` : planToText(p, planCtx));
  if (gaps.length > 0) io.err(degradedLines(gaps));
  if (opts.out !== undefined) {
    const outPath = resolve(io.cwd, opts.out);
    if (gaps.length > 0) {
      io.err(`lanekeeper plan: the plan was NOT saved to ${outPath}: a plan made from a degraded view cannot be applied; fix what the DEGRADED lines name and run lanekeeper plan --out ${opts.out} again\n`);
    } else {
      const saved = makeSavedPlan({
        planId: p.planId,
        actions: p.actions,
        policy: policy.policy,
        policyPath: policy.path,
        nowMs: io.now(),
        ...(opts.expiresIn === undefined ? {} : { ttlMs: opts.expiresIn }),
      });
      await writeTextAtomic(outPath, formatSavedPlan(saved));
      io.err(`lanekeeper plan: saved ${p.actions.length} action(s) to ${outPath} (expires ${saved.expiresAt}); apply exactly these with: lanekeeper apply ${opts.out}\n`);
    }
  }
  return planExitCode({ scopesUnavailable: p.observation.scopesUnavailable, degraded: gaps.length > 0, actions: p.actions.length }, opts.detailedExitcode === true);
}

/**
 * The plan from GitHub alone (no NATS or key: `unopened` says which; or `--records`): hosts are unknown, which
 * the output says, loudly.
 */
async function runOfflinePlan(opts: PlanCommandOptions, io: CliIo, deps: PlanCommandDeps, unopened?: ViewGap): Promise<number> {
  const path = policyPath(opts.policy, io.env, io.cwd);
  const file = await readPolicyFile(path);
  const policy = file.policy;
  const recordsPath = opts.records === undefined ? undefined : resolve(io.cwd, opts.records);
  const records = recordsPath === undefined ? [] : parseLaneRecordsJson(await readSmallText(recordsPath, "records", "RECORDS_INVALID"), recordsPath);
  const store = new MemoryLaneStore(records);
  const stored = await store.list();

  const log = cliLogger(io, opts.json === true ? "json" : "human");
  const client = await createGitHubClient(policy.github, {
    env: io.env,
    log,
    ...(opts.rateLimitReserve === undefined ? {} : { rateLimitReserve: opts.rateLimitReserve }),
    ...(deps.fetch === undefined ? {} : { fetch: deps.fetch }),
  });
  const scopes = new Set<string>([
    ...Object.entries(policy.scopes).filter(([, s]) => s.optIn).map(([k]) => k),
    ...policy.lanes.map((l) => l.scope),
    ...stored.map((r) => r.scope),
  ]);
  const observedScopes = await observeScopes(client, [...scopes], { clock: { now: () => io.now() } });
  const inventory = emptyInventory();
  const runnerReleases = await observeRunnerReleases(client, policy);
  const nowMs = io.now();
  const p = plan(policy, { scopes: observedScopes, inventory, ...(runnerReleases === undefined ? {} : { runnerReleases }) }, stored, {
    nowMs,
    ...(opts.maxRemovals === undefined ? {} : { maxRemovals: opts.maxRemovals }),
    ...(opts.maxCreates === undefined ? {} : { maxCreates: opts.maxCreates }),
  });
  const notes = [
    "no agent inventories were read (NATS or the coordinator key not available, or --records given): hosts are unknown, so " +
      "restarts, scale-down and orphan cleanup wait; creates are guarded by each agent's own checks at apply time",
    ...(opts.records === undefined ? ["no lane records were given (--records): every lanekeeper-labelled runner is unrecorded"] : []),
  ];
  const gaps = viewGaps({
    policy,
    observed: { scopes: observedScopes, inventory },
    nowMs,
    unopened: [unopened ?? recordsFileGap(recordsPath ?? "")],
  });
  const ctx: PlanContext = { notes, gaps, rateLimit: client.rateLimit(), metrics: client.metrics() };
  return finishPlan(p, ctx, { policy, path }, opts, io);
}
