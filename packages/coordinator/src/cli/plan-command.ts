import { resolve } from "node:path";
import { createLogger } from "@lanekeeper/shared";
import { createGitHubClient } from "../github/github-client-from-policy.js";
import { observeScopes } from "../observe/github-observer.js";
import { emptyInventory } from "../observe/inventory-view.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import { plan } from "../plan/planner.js";
import type { CliIo } from "./cli-io.js";
import { ExitCode, exitCodeForCode } from "./exit-codes.js";
import { parseLaneRecordsJson } from "./lane-records-file.js";
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
}

/** Injected for tests (e.g. to watch GitHub requests). */
export interface PlanCommandDeps {
  readonly fetch?: typeof fetch;
}

/**
 * `lanekeeper plan`: observe GitHub, classify, plan, print. Changes nothing. Without agent inventories (the
 * NATS reader is a later piece) hosts are unknown, which the output says; the planner then only plans what is
 * safe without host evidence.
 */
export async function runPlan(opts: PlanCommandOptions, io: CliIo, deps: PlanCommandDeps = {}): Promise<ExitCode> {
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
    "no agent inventories were read (the NATS inventory reader is not part of this build): hosts are unknown, so " +
      "restarts, scale-down and orphan cleanup wait; creates are guarded by each agent's own checks at apply time",
    ...(opts.records === undefined ? ["no lane records were given (--records): every lanekeeper-labelled runner is unrecorded"] : []),
  ];
  const ctx = { notes, rateLimit: client.rateLimit(), metrics: client.metrics() };
  io.out(opts.json === true ? `${JSON.stringify(planToJson(p, ctx), null, 2)}\n` : planToText(p, ctx));

  // The plan is printed either way; the exit code tells scripts whether it rests on complete observations.
  let code = ExitCode.OK;
  for (const s of p.observation.scopesUnavailable) {
    const c = exitCodeForCode(s.code);
    if (c === ExitCode.GITHUB_AUTH || code === ExitCode.OK) code = c;
  }
  return code;
}
