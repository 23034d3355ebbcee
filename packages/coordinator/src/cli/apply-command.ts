import { ApplyRefusedError } from "../apply/apply-errors.js";
import type { ApplyCommandOptions } from "./apply-command-options.js";
import { runApplySaved } from "./apply-saved-plan.js";
import { livePlan } from "./live-plan.js";
import type { CliIo } from "./cli-io.js";
import { ACT_TIMEOUT_MS, terminalConfirm, withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { ExitCode, exitCodeForCode, exitCodeForObservedCode } from "./exit-codes.js";
import { progressPrinter } from "./progress-printer.js";
import { planToJson, planToText } from "./render-plan.js";
import { exitCodeForReport, reportToText } from "./render-report.js";


/**
 * `lanekeeper apply`: wait for fresh agent inventories, observe, plan, show the plan, confirm (a terminal prompt,
 * or `--yes`), then run it through the apply engine with progress on stderr, and print the report. `--dry-run`
 * changes nothing at all (no intent, no GitHub mutation, no lane record) and writes the plan to the audit log as
 * `dry-run` records. The exit code says whether every action succeeded (see `exitCodeForReport`). With `planFile`
 * it applies that saved plan instead ({@link runApplySaved}).
 */
export async function runApply(opts: ApplyCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}, planFile?: string): Promise<ExitCode> {
  // A saved plan (`plan --out`) is applied as it was reviewed: no re-planning.
  if (planFile !== undefined) return runApplySaved(planFile, opts, io, deps);
  return withCoordinator(opts, io, deps, async (ctx) => {
    const { plan, planCtx } = await livePlan(ctx, opts);
    const json = opts.json === true;
    if (!json) io.out(planToText(plan, { ...planCtx, applying: opts.dryRun !== true }));
    if (opts.dryRun !== true && plan.actions.length > 0 && opts.yes !== true) {
      const confirm = deps.confirm === null ? undefined : (deps.confirm ?? terminalConfirm());
      if (confirm === undefined) {
        throw new ApplyRefusedError(
          "APPLY_NOT_CONFIRMED",
          `the plan has ${plan.actions.length} action(s) and stdin is not a terminal to confirm them: pass --yes to apply ` +
            "without confirmation, or --dry-run to record the plan without changing anything",
        );
      }
      if (!(await confirm(`Apply these ${plan.actions.length} action(s)?`))) {
        io.err("Nothing was changed.\n");
        return ExitCode.OK;
      }
    }
    const report = await ctx.engine(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }).run(plan, {
      dryRun: opts.dryRun === true,
      onEvent: progressPrinter(io, { json, quiet: opts.quiet === true }),
    });
    if (json) io.out(`${JSON.stringify({ ...report, plan: planToJson(plan, planCtx) }, null, 2)}\n`);
    else io.out(reportToText(report));
    const code = exitCodeForReport(report);
    if (code !== ExitCode.OK) return code;
    if (opts.dryRun !== true) {
      // Everything planned worked, but a group is still short and no host can take its lanes: say so to scripts.
      const stuck = plan.groups.filter(
        (g) => g.planned < g.desired && plan.warnings.some((w) => w.code === "NO_CAPACITY" && w.scope === g.scope && w.pool === g.pool),
      );
      if (stuck.length > 0) {
        if (!json) io.err(`not converged: ${stuck.map((g) => `${g.scope}/${g.pool} has ${g.planned} of ${g.desired} lanes`).join("; ")} (no host can take more; see the warnings)\n`);
        return exitCodeForCode("NOT_CONVERGED");
      }
    }
    // Everything planned worked, but some scope could not be observed: the plan was partial.
    const unavailable = plan.observation.scopesUnavailable[0];
    return unavailable === undefined ? ExitCode.OK : exitCodeForObservedCode(unavailable.code);
  }, ACT_TIMEOUT_MS);
}
