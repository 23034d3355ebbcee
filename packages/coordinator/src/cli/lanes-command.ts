import { userInfo } from "node:os";
import { usageError } from "@lanekeeper/shared";
import { ApplyRefusedError } from "../apply/apply-errors.js";
import { runLaneCommand, type LaneCommand } from "../apply/lane-commands.js";
import type { CliIo } from "./cli-io.js";
import { ACT_TIMEOUT_MS, terminalConfirm, withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { formatDuration } from "./duration.js";
import { ExitCode } from "./exit-codes.js";
import { progressPrinter } from "./progress-printer.js";
import { exitCodeForReport, reportToText } from "./render-report.js";

/** Options of `lanekeeper lanes <op> <lane>`. */
export interface LanesCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
  /**
   * Stop the lane even though a job runs, once `--deadline` has passed. Needs `--deadline` and a confirmation (a
   * terminal prompt, else `--yes`).
   */
  readonly force?: boolean;
  /** Confirm `--force` without a prompt (required when stdin is not a terminal). */
  readonly yes?: boolean;
  /** Drain deadline (ms), overriding the policy's `coordinator.drain.deadlineMs`. */
  readonly deadline?: number;
  /** Hold reason. */
  readonly reason?: string;
  /** Who runs the command (audited; `forced_by` of forced intents). */
  readonly operator?: string;
  readonly inventoryWait?: number;
}

/** The operator's name: `--operator`, else `$LANEKEEPER_OPERATOR`, else the login name. */
export function operatorName(opt: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (opt !== undefined && opt !== "") return opt;
  if (env.LANEKEEPER_OPERATOR !== undefined && env.LANEKEEPER_OPERATOR !== "") return env.LANEKEEPER_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return "operator";
  }
}

/**
 * `lanekeeper lanes drain|restart|remove|hold|release <lane>`: the operator commands, through the same engine,
 * guards, drain protocol and audit as `apply`. Progress on stderr; the report on stdout.
 */
export async function runLanes(op: LaneCommand, laneId: string, opts: LanesCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  if (opts.force === true && !(await confirmForce(op, laneId, opts, io, deps))) {
    io.err("Nothing was changed.\n");
    return ExitCode.OK;
  }
  return withCoordinator(opts, io, deps, async (ctx) => {
    // Only the lane's host matters here (an unknown lane waits for every host, then is reported as unknown).
    const rec = await ctx.store.get(laneId).catch(() => undefined);
    await ctx.waitForInventories(opts.inventoryWait, rec === undefined ? undefined : [rec.hostId]);
    const json = opts.json === true;
    const report = await runLaneCommand(
      {
        policy: ctx.policy,
        github: ctx.github,
        store: ctx.store,
        inventory: ctx.inventory,
        dispatcher: ctx.dispatcher,
        audit: ctx.audit,
        engine: ctx.engine(),
        clock: ctx.clock,
        leases: ctx.leases,
      },
      op,
      laneId,
      {
        operator: operatorName(opts.operator, io.env),
        force: opts.force === true,
        ...(opts.deadline === undefined ? {} : { deadlineMs: opts.deadline }),
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        onEvent: progressPrinter(io, { json, quiet: opts.quiet === true }),
      },
    );
    io.out(json ? `${JSON.stringify(report, null, 2)}\n` : reportToText(report));
    return exitCodeForReport(report);
  }, ACT_TIMEOUT_MS);
}

/**
 * `--force` kills a running job, so it is never implied: it needs an explicit `--deadline` (how long the job gets
 * to finish first) and a confirmation, a prompt on a terminal or `--yes`. Checked before anything is opened.
 */
async function confirmForce(op: LaneCommand, laneId: string, opts: LanesCommandOptions, io: CliIo, deps: CoordinatorCliDeps): Promise<boolean> {
  if (opts.deadline === undefined) {
    throw usageError(
      `--force needs --deadline <duration>: how long the running job may take before lanes ${op} stops it (e.g. --force --deadline 10m)`,
      `lanekeeper lanes ${op} --help`,
    );
  }
  if (opts.yes === true) return true;
  const confirm = deps.confirm === null ? undefined : (deps.confirm ?? terminalConfirm());
  if (confirm === undefined) {
    throw new ApplyRefusedError(
      "FORCE_NOT_CONFIRMED",
      `lanes ${op} ${laneId} --force stops the lane with a running job after ${formatDuration(opts.deadline)}, and stdin is not a terminal to confirm it: ` +
        "pass --yes to force without a prompt, or leave out --force",
    );
  }
  return confirm(
    `lanes ${op} ${laneId}: if a job still runs there after ${formatDuration(opts.deadline)}, stop the lane and kill the job (audited as forced by ${operatorName(opts.operator, io.env)})?`,
  );
}
