import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { usageError } from "@lanekeeper/shared";
import { ApplyRefusedError } from "../apply/apply-errors.js";
import { FreshView } from "../apply/fresh-view.js";
import { DEFAULT_APPLY_INVENTORY_MAX_AGE_MS } from "../apply/limits.js";
import { staleActions } from "../apply/saved-plan-guards.js";
import type { PlanActionKind } from "../plan/action.js";
import { checkSavedPlanCurrent, MAX_SAVED_PLAN_BYTES, parseSavedPlan, savedActions, SavedPlanError } from "../plan/saved-plan.js";
import type { ApplyCommandOptions } from "./apply-command-options.js";
import type { CliIo } from "./cli-io.js";
import { ACT_TIMEOUT_MS, terminalConfirm, withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode } from "./exit-codes.js";
import { progressPrinter } from "./progress-printer.js";
import { savedPlanToText } from "./render-plan.js";
import { exitCodeForReport, reportToText } from "./render-report.js";

async function readPlanFile(path: string, given: string): Promise<string> {
  try {
    if ((await stat(path)).size > MAX_SAVED_PLAN_BYTES) {
      throw new SavedPlanError("PLAN_INVALID", "MALFORMED", `${path} is larger than ${MAX_SAVED_PLAN_BYTES} bytes`, given);
    }
    return await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof SavedPlanError) throw err;
    throw new SavedPlanError("PLAN_INVALID", "UNREADABLE", `cannot read the plan file ${path}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`, given);
  }
}

/**
 * `lanekeeper apply <plan-file>`: apply exactly the actions `plan --out` saved, never re-planning. The file is
 * validated first (`PLAN_INVALID`, before anything is opened); then, with the coordinator open, the plan must not
 * have expired, the policy must be the one it was made from, and every action's guards must hold against a fresh
 * view of GitHub, the lane store and the agents' inventories. Any of these failing refuses the whole plan
 * (`PLAN_STALE`, with the reason and what changed) and nothing is done. `--dry-run` runs the same checks and
 * records the plan as `dry-run` audit records.
 */
export async function runApplySaved(planFile: string, opts: ApplyCommandOptions, io: CliIo, deps: CoordinatorCliDeps): Promise<ExitCode> {
  if (opts.maxRemovals !== undefined || opts.maxCreates !== undefined) {
    throw usageError(
      `--max-removals and --max-creates shape a new plan; a saved plan is applied as it was reviewed (make another with lanekeeper plan --out ${planFile})`,
      "lanekeeper apply --help",
    );
  }
  const path = resolve(io.cwd, planFile);
  const saved = parseSavedPlan(await readPlanFile(path, planFile), path, planFile);
  const actions = savedActions(saved);
  return withCoordinator(
    opts,
    io,
    deps,
    async (ctx) => {
      checkSavedPlanCurrent(saved, { policy: ctx.policy, nowMs: ctx.clock.now(), path: planFile });
      const hosts = [...new Set(actions.map((a) => a.hostId))].filter((h) => h !== "");
      if (hosts.length > 0) await ctx.waitForInventories(opts.inventoryWait, hosts);
      const view = new FreshView({
        github: ctx.github,
        store: ctx.store,
        inventory: ctx.inventory,
        clock: ctx.clock,
        inventoryMaxAgeMs: DEFAULT_APPLY_INVENTORY_MAX_AGE_MS,
      });
      const stale = await staleActions(actions, view, ctx.policy);
      if (stale.length > 0) {
        throw new SavedPlanError(
          "PLAN_STALE",
          "GUARD_FAILED",
          `the world changed since plan ${saved.planId} was made: ${stale.length} of ${actions.length} action(s) no longer hold: ` +
            stale.map((s) => `${s.actionId}: ${s.why}`).join("; "),
          planFile,
        );
      }
      const json = opts.json === true;
      const dryRun = opts.dryRun === true;
      if (!json) io.out(savedPlanToText(saved, actions, !dryRun));
      if (!dryRun && actions.length > 0 && opts.yes !== true) {
        const confirm = deps.confirm === null ? undefined : (deps.confirm ?? terminalConfirm());
        if (confirm === undefined) {
          throw new ApplyRefusedError(
            "APPLY_NOT_CONFIRMED",
            `the saved plan has ${actions.length} action(s) and stdin is not a terminal to confirm them: pass --yes to apply ` +
              "without confirmation, or --dry-run to record the plan without changing anything",
          );
        }
        if (!(await confirm(`Apply these ${actions.length} action(s)?`))) {
          io.err("Nothing was changed.\n");
          return ExitCode.OK;
        }
      }
      const counts: Partial<Record<PlanActionKind, number>> = {};
      for (const a of actions) counts[a.kind] = (counts[a.kind] ?? 0) + 1;
      const report = await ctx.engine(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }).run(
        { planId: saved.planId, actions, counts },
        { dryRun, onEvent: progressPrinter(io, { json, quiet: opts.quiet === true }) },
      );
      if (json) {
        io.out(`${JSON.stringify({ ...report, savedPlan: { file: path, planId: saved.planId, createdAt: saved.createdAt, expiresAt: saved.expiresAt, policy: saved.policy } }, null, 2)}\n`);
      } else io.out(reportToText(report));
      return exitCodeForReport(report);
    },
    ACT_TIMEOUT_MS,
  );
}
