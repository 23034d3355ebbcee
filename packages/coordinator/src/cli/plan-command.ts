import { resolve } from "node:path";
import { createLogger } from "@lanekeeper/shared";
import { CoordinatorKeyError, NatsUnavailableError } from "../context/coordinator-context.js";
import { createGitHubClient } from "../github/github-client-from-policy.js";
import { observeScopes } from "../observe/github-observer.js";
import { emptyInventory } from "../observe/inventory-view.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import { plan } from "../plan/planner.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode, exitCodeForObservedCode } from "./exit-codes.js";
import { parseLaneRecordsJson } from "./lane-records-file.js";
import { livePlan } from "./live-plan.js";
import { policyPath, readPolicyFile, readSmallText } from "./policy-file.js";
import { planToJson, planToText } from "./render-plan.js";

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
}

/** Injected for tests (e.g. to watch GitHub requests, or to open the coordinator). */
export type PlanCommandDeps = Pick<CoordinatorCliDeps, "fetch" | "open">;

/**
 * `lanekeeper plan`: observe, classify, plan, print; changes nothing. With NATS reachable it plans from exactly
 * what `apply --dry-run` sees (lane records in the KV store and the agents' live inventories), so the plan shown
 * is the plan apply would run. Without NATS or the coordinator key, or with `--records`, it plans from GitHub
 * alone and says so.
 */
export async function runPlan(opts: PlanCommandOptions, io: CliIo, deps: PlanCommandDeps = {}): Promise<ExitCode> {
  if (opts.records === undefined) {
    try {
      return await withCoordinator(opts, io, deps, async (ctx) => {
        const { plan: p, planCtx } = await livePlan(ctx, opts);
        io.out(opts.json === true ? `${JSON.stringify(planToJson(p, planCtx), null, 2)}\n` : planToText(p, planCtx));
        return scopesExitCode(p.observation.scopesUnavailable);
      });
    } catch (err) {
      // `plan` signs nothing, so a machine without the coordinator's key or NATS can still show a GitHub-only plan.
      if (!(err instanceof NatsUnavailableError || err instanceof CoordinatorKeyError)) throw err;
      io.err(`lanekeeper plan: ${err.message}; planning from GitHub alone\n`);
    }
  }
  return runOfflinePlan(opts, io, deps);
}

/** The exit code for a plan: it is printed either way; the code tells scripts whether it rests on complete observations. */
function scopesExitCode(unavailable: readonly { readonly code: string }[]): ExitCode {
  let code = ExitCode.OK;
  for (const s of unavailable) {
    const c = exitCodeForObservedCode(s.code);
    if (c === ExitCode.GITHUB_AUTH || code === ExitCode.OK) code = c;
  }
  return code;
}

/** The plan from GitHub alone (no NATS, or `--records`): hosts are unknown, which the output says. */
async function runOfflinePlan(opts: PlanCommandOptions, io: CliIo, deps: PlanCommandDeps): Promise<ExitCode> {
  const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const policy = file.policy;
  const recordsPath = opts.records === undefined ? undefined : resolve(io.cwd, opts.records);
  const records = recordsPath === undefined ? [] : parseLaneRecordsJson(await readSmallText(recordsPath, "records", "RECORDS_INVALID"), recordsPath);
  const store = new MemoryLaneStore(records);
  const stored = await store.list();

  const log = createLogger({
    component: "lanekeeper",
    level: (io.env.LANEKEEPER_LOG_LEVEL as "warn" | undefined) ?? "warn",
    destination: { write: (s: string): void => io.err(s) },
  });
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
  const nowMs = io.now();
  const p = plan(policy, { scopes: observedScopes, inventory }, stored, {
    nowMs,
    ...(opts.maxRemovals === undefined ? {} : { maxRemovals: opts.maxRemovals }),
    ...(opts.maxCreates === undefined ? {} : { maxCreates: opts.maxCreates }),
  });
  const notes = [
    "no agent inventories were read (NATS or the coordinator key not available, or --records given): hosts are unknown, so " +
      "restarts, scale-down and orphan cleanup wait; creates are guarded by each agent's own checks at apply time",
    ...(opts.records === undefined ? ["no lane records were given (--records): every lanekeeper-labelled runner is unrecorded"] : []),
  ];
  const ctx = { notes, rateLimit: client.rateLimit(), metrics: client.metrics() };
  io.out(opts.json === true ? `${JSON.stringify(planToJson(p, ctx), null, 2)}\n` : planToText(p, ctx));

  return scopesExitCode(p.observation.scopesUnavailable);
}
