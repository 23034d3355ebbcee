import { InvalidArgumentError, type Command } from "commander";
import { hasWorkflows } from "../github/github-workflows.js";
import { runSmoke } from "../smoke/smoke-run.js";
import { smokeReportToText, type SmokeStep, type SmokeStepName } from "../smoke/smoke-report.js";
import { runAuditVerify } from "./audit-command.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { formatDuration, parseDuration } from "./duration.js";
import { ExitCode, exitCodeForCode } from "./exit-codes.js";
import { operatorName } from "./lanes-command.js";
import { policyPath } from "./policy-file.js";
import { progressPrinter } from "./progress-printer.js";

/** Options of `lanekeeper smoke`. */
export interface SmokeCommandOptions {
  readonly policy?: string;
  /** `repo:<owner>/<name>` or `org:<org>`. */
  readonly scope: string;
  readonly host: string;
  readonly pool?: string;
  readonly runtime?: "systemd" | "container";
  readonly workflow?: string;
  readonly ref?: string;
  readonly workflowRepo?: string;
  /** The workflow input that receives the smoke label. @default runner_label */
  readonly workflowInput?: string;
  /** The whole run's deadline (ms). @default 30 minutes */
  readonly timeout?: number;
  /** Longest wait for the workflow's job (ms). @default 10 minutes */
  readonly jobTimeout?: number;
  /** Drain deadline of the removal and the clean-up (ms). @default 10 minutes */
  readonly drainDeadline?: number;
  /** Keep the lane online this long before restarting it (ms). @default 0 */
  readonly linger?: number;
  readonly inventoryWait?: number;
  readonly operator?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** Default `--timeout` of `lanekeeper smoke`. */
export const SMOKE_TIMEOUT_MS = 30 * 60_000;
/** How much longer than `--timeout` the lane's lease runs: a run killed outright leaves the lane this long to an operator. */
const LEASE_MARGIN_MS = 10 * 60_000;

/**
 * Ctrl-C handling: the first SIGINT (or SIGTERM) stops the run where it is and cleans up; a second one stops the
 * clean-up as well (the report then names what is left). A test passes `deps.signal` instead.
 */
function interruptSignals(deps: CoordinatorCliDeps): { soft: AbortSignal; hard: AbortSignal; release: () => void } {
  const soft = new AbortController();
  const hard = new AbortController();
  if (deps.signal !== undefined) {
    const s = deps.signal;
    const onAbort = (): void => soft.abort();
    if (s.aborted) soft.abort();
    else s.addEventListener("abort", onAbort, { once: true });
    return { soft: soft.signal, hard: hard.signal, release: () => s.removeEventListener("abort", onAbort) };
  }
  const onSignal = (): void => {
    if (soft.signal.aborted) hard.abort();
    else soft.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    soft: soft.signal,
    hard: hard.signal,
    release: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** An io that keeps stdout, for reading a command's `--json` output. */
function capture(io: CliIo): CliIo & { readonly text: () => string } {
  let out = "";
  return { ...io, out: (t) => void (out += t), err: () => undefined, text: () => out };
}

/**
 * `lanekeeper smoke --scope … --host …`: one disposable lane through create, (workflow,) restart and remove,
 * each step with its timing on stderr, the report on stdout (`--json`: {@link SmokeReport}). Exit 0 when every
 * step passed and nothing is left; a refusal (opt-in missing on either side) exits before anything changes.
 */
export async function runSmokeCommand(opts: SmokeCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  const json = opts.json === true;
  const quiet = opts.quiet === true;
  const timeoutMs = opts.timeout ?? SMOKE_TIMEOUT_MS;
  const signals = interruptSignals(deps);
  const printEngine = progressPrinter(io, { json, quiet });
  const stepLine = (s: SmokeStep): void => {
    if (quiet) return;
    if (json) io.err(`${JSON.stringify({ event: { type: "smoke-step", ...s } })}\n`);
    else io.err(`${s.status === "ok" ? "✓" : "✗"} ${s.name} (${formatDuration(s.elapsedMs)}): ${s.code === undefined ? "" : `${s.code}: `}${s.detail}\n`);
  };
  const startLine = (name: SmokeStepName): void => {
    if (quiet) return;
    if (json) io.err(`${JSON.stringify({ event: { type: "smoke-step-start", name } })}\n`);
    else io.err(`→ ${name}\n`);
  };
  try {
    return await withCoordinator(
      opts,
      io,
      deps,
      async (ctx) => {
        const verifyAudit = async (hostId: string): Promise<{ ok: boolean; detail: string }> => {
          const c = capture(io);
          const coordinatorExit = await runAuditVerify({ ...(opts.policy === undefined ? {} : { policy: opts.policy }), stream: true, json: true }, c, deps);
          const coordinator = JSON.parse(c.text()) as { count?: number; status?: string; message?: string };
          const h = capture(io);
          const hostExit = await runAuditVerify({ ...(opts.policy === undefined ? {} : { policy: opts.policy }), host: hostId, json: true }, h, deps);
          const host = JSON.parse(h.text()) as { status?: string; messages?: string[] };
          return {
            ok: coordinatorExit === ExitCode.OK && hostExit === ExitCode.OK,
            detail: `coordinator chain: ${coordinator.count ?? 0} records, ${coordinator.status ?? "?"} (local file and LK_AUDIT stream); ${hostId}: ${host.status ?? "?"} (${(host.messages ?? []).filter((m) => !m.startsWith("on the host")).join("; ")})`,
          };
        };
        const report = await runSmoke(
          {
            policy: ctx.policy,
            policyFile: policyPath(opts.policy, io.env, io.cwd),
            github: ctx.github,
            workflows: hasWorkflows(ctx.github) ? ctx.github : undefined,
            store: ctx.store,
            inventory: ctx.inventory,
            dispatcher: ctx.dispatcher,
            audit: ctx.audit,
            clock: ctx.clock,
            engine: (over) => ctx.engine(over),
            waitForInventories: (ms, hosts) => ctx.waitForInventories(ms, hosts),
            verifyAudit,
          },
          {
            request: {
              scope: opts.scope,
              hostId: opts.host,
              pool: opts.pool,
              runtime: opts.runtime,
              workflow: opts.workflow,
              ref: opts.ref,
              workflowRepo: opts.workflowRepo,
            },
            operator: operatorName(opts.operator, io.env),
            leaseMs: timeoutMs + LEASE_MARGIN_MS,
            jobTimeoutMs: opts.jobTimeout ?? 10 * 60_000,
            drainDeadlineMs: opts.drainDeadline ?? 10 * 60_000,
            lingerMs: opts.linger ?? 0,
            inputName: opts.workflowInput ?? "runner_label",
            inventoryWaitMs: opts.inventoryWait,
            signal: signals.soft,
            hardSignal: signals.hard,
            onStepStart: startLine,
            onStep: stepLine,
            onEvent: (e) => {
              // Step-level lines come from the smoke itself; the engine's drain waits are worth showing.
              if (e.type === "drain-wait") printEngine(e);
            },
          },
        );
        io.out(json ? `${JSON.stringify(report, null, 2)}\n` : smokeReportToText(report));
        if (report.ok) return ExitCode.OK;
        return exitCodeForCode(report.interrupted ? "SMOKE_INTERRUPTED" : "SMOKE_FAILED");
      },
      timeoutMs,
    );
  } finally {
    signals.release();
  }
}

/** Register `lanekeeper smoke` on the program; `done` receives its exit code. */
export function registerSmokeCommand(program: Command, io: CliIo, deps: CoordinatorCliDeps, done: (code: ExitCode) => void): void {
  program
    .command("smoke")
    .description("first contact: one disposable lane through create, (a workflow,) restart and remove on one host, then both audit chains")
    .requiredOption("--scope <scope>", "where the lane registers: repo:<owner>/<name> or org:<org> (opted in on both sides)")
    .requiredOption("--host <hostId>", "the host (enrolled, opted in, its agent allowing the scope, pool and backend)")
    .option("--pool <pool>", "the pool whose backend, runner version or image the lane uses (default: the first the host allows)")
    .option("--runtime <runtime>", "systemd | container: only pools of this backend", (v: string) => {
      if (v !== "systemd" && v !== "container") throw new InvalidArgumentError("must be systemd or container");
      return v;
    })
    .option("--workflow <file>", "dispatch this workflow (workflow_dispatch) and wait for its job to run on the lane")
    .option("--ref <ref>", "the branch or tag to dispatch the workflow on")
    .option("--workflow-repo <owner/name>", "the workflow's repository (organization scopes)")
    .option("--workflow-input <name>", "the workflow input that receives the smoke label (default runner_label)")
    .option("--job-timeout <duration>", "longest wait for the workflow's job (default 10m)", parseDuration)
    .option("--drain-deadline <duration>", "drain deadline of the removal and the clean-up; a job is never killed (default 10m)", parseDuration)
    .option("--linger <duration>", "keep the lane online this long before restarting it (default 0)", parseDuration)
    .option("--policy <file>", "policy file (default: $LANEKEEPER_POLICY or ./lanekeeper.yaml)")
    .option("--operator <name>", "who runs this, for the audit log (default: $LANEKEEPER_OPERATOR or the login name)")
    .option("--inventory-wait <duration>", "how long to wait for the host's inventory (default 15s)", parseDuration)
    .option("--timeout <duration>", "give up (exit 16) when the whole run takes longer (default 30m)", parseDuration)
    .option("--json", "print the report as JSON on stdout; steps and drain waits as JSON lines on stderr")
    .option("--quiet", "no progress lines on stderr")
    .action(async (o: SmokeCommandOptions) => {
      done(await runSmokeCommand(o, io, deps));
    });
}
