import { userInfo } from "node:os";
import { runLaneCommand, type LaneCommand } from "../apply/lane-commands.js";
import type { CliIo } from "./cli-io.js";
import { ACT_TIMEOUT_MS, withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import type { ExitCode } from "./exit-codes.js";
import { progressPrinter } from "./progress-printer.js";
import { exitCodeForReport, reportToText } from "./render-report.js";

/** Options of `lanekeeper lanes <op> <lane>`. */
export interface LanesCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
  /** Stop the lane even though a job runs, once the deadline passed (at once without `--deadline`). */
  readonly force?: boolean;
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
