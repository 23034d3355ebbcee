import { LANE_LABEL_PREFIX, type Clock, type Policy } from "@lanekeeper/shared";
import { errCode, errMessage } from "../apply/action-outcome.js";
import type { ApplyEngine, ApplyEngineOptions, IntentSender } from "../apply/apply-engine.js";
import { StepFailure } from "../apply/apply-errors.js";
import type { ApplyEvent, ApplyReport } from "../apply/apply-events.js";
import { laneView, type LaneCommandDeps } from "../apply/lane-commands.js";
import { operatorAction } from "../apply/operator-actions.js";
import type { AuditTrail } from "../audit/coordinator-audit.js";
import { observeWorld } from "../context/observe-world.js";
import type { GitHubClient } from "../github/github-client.js";
import type { GitHubWorkflows } from "../github/github-workflows.js";
import { toHostInventory, type InventorySource } from "../observe/inventory-source.js";
import type { LaneStore } from "../observe/lane-store.js";
import type { Action } from "../plan/action.js";
import { newSmokeIdentity, smokeCleanupAction, smokeCreateAction, smokeLabels, smokeRestartAction } from "./smoke-actions.js";
import { interruptibleSleep, SmokeInterruptedError, SmokeRefusedError } from "./smoke-errors.js";
import { checkAgentSide, checkPolicySide, type SmokeRequest, type SmokeTarget } from "./smoke-preflight.js";
import type { SmokeLeftover, SmokeReport, SmokeStep, SmokeStepName } from "./smoke-report.js";
import { runSmokeWorkflow, type SmokeJob } from "./smoke-workflow.js";

/** What a smoke run uses: the coordinator's own parts (the apply engine does every change). */
export interface SmokeDeps {
  readonly policy: Policy;
  /** The policy file, named in refusals. */
  readonly policyFile: string;
  readonly github: GitHubClient;
  /** Needed only with a workflow. */
  readonly workflows?: GitHubWorkflows | undefined;
  readonly store: LaneStore;
  readonly inventory: InventorySource;
  readonly dispatcher: IntentSender;
  readonly audit: AuditTrail;
  readonly clock: Clock;
  /** An apply engine over the coordinator (the smoke passes its own interruptible sleep). */
  engine(over?: Partial<ApplyEngineOptions>): ApplyEngine;
  /** Wait for a fresh inventory of these hosts; returns those still unheard. */
  waitForInventories(timeoutMs: number | undefined, hosts: readonly string[]): Promise<string[]>;
  /** Verify the coordinator's audit chain and the host's (against its anchor). */
  verifyAudit(hostId: string): Promise<{ readonly ok: boolean; readonly detail: string }>;
}

/** Options of {@link runSmoke}. */
export interface SmokeRunOptions {
  readonly request: SmokeRequest;
  /** Who runs it (audited). */
  readonly operator: string;
  /** How long the lane's record says the run owns it (plan and serve leave it alone meanwhile). */
  readonly leaseMs: number;
  /** Longest wait for the dispatched workflow's job to run and finish. */
  readonly jobTimeoutMs: number;
  /** The drain deadline of the removal (and of the clean-up): a job still running then is never killed. */
  readonly drainDeadlineMs: number;
  /** Keep the lane online this long before the restart (e.g. to run jobs by hand against the smoke label). */
  readonly lingerMs: number;
  /** The workflow input that carries the smoke label. */
  readonly inputName: string;
  readonly inventoryWaitMs?: number | undefined;
  /** First SIGINT: stop where the run is and clean up. */
  readonly signal?: AbortSignal | undefined;
  /** Second SIGINT: stop cleaning up too; the report lists what is left. */
  readonly hardSignal?: AbortSignal | undefined;
  readonly onStepStart?: (name: SmokeStepName) => void;
  readonly onStep?: (step: SmokeStep) => void;
  readonly onEvent?: (e: ApplyEvent) => void;
}

const CHECK_TIMEOUT_MS = 60_000;

/**
 * `lanekeeper smoke`: the first-contact check on a real GitHub and one real host. Refuses to start (a
 * {@link SmokeRefusedError}, nothing changed) unless the scope and host are opted in on both sides. Then, each
 * step through the apply engine and its drain protocol: create one disposable lane registered with a unique
 * smoke label, see it online, optionally run the operator's workflow on it, restart it, see it online again,
 * remove it, see the registration, the unit or container and the record gone, verify both audit chains. On a
 * failure or SIGINT, whatever is left of the lane is removed (drain protocol, bounded by the drain deadline,
 * never killing a job); what could not be is in the report with the command that finishes it.
 */
export async function runSmoke(deps: SmokeDeps, opts: SmokeRunOptions): Promise<SmokeReport> {
  const { clock } = deps;
  const t0 = clock.now();
  const steps: SmokeStep[] = [];
  const record = (s: SmokeStep): void => {
    steps.push(s);
    opts.onStep?.(s);
  };

  // Preflight: both sides of the opt-in, before anything is written anywhere.
  opts.onStepStart?.("preflight");
  const side = checkPolicySide(deps.policy, deps.policyFile, opts.request);
  const unheard = await deps.waitForInventories(opts.inventoryWaitMs, [side.hostId]);
  const snap = await deps.inventory.latest(side.hostId);
  if (unheard.length > 0 || snap === undefined) {
    throw new SmokeRefusedError(
      "SMOKE_HOST_UNHEARD",
      `no fresh inventory from ${side.hostId}: its agent is not running or not connected to NATS`,
      `on ${side.hostId}: systemctl status lanekeeper-agent; lanekeeper-agent status`,
    );
  }
  const target = checkAgentSide(deps.policy, toHostInventory(snap), side);
  if (target.workflow !== undefined && deps.workflows === undefined) {
    throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", "this GitHub client cannot dispatch workflows", "run without --workflow");
  }
  const world = await observeWorld({ policy: deps.policy, github: deps.github, store: deps.store, inventory: deps.inventory, clock });
  const taken = new Set([...world.records.map((r) => r.laneId), ...(world.retiredLaneIds ?? []), ...snap.snapshot.lanes.map((l) => l.laneId)]);
  const { laneId, label } = newSmokeIdentity(taken);
  const runId = laneId;
  const labels = smokeLabels(laneId, target, label);
  record({ name: "preflight", status: "ok", elapsedMs: clock.now() - t0, detail: `${target.scope} and ${target.hostId} opted in on both sides; pool ${target.pool} (${target.poolPolicy.backend}); lane ${laneId}, label ${label}` });

  const sleep = interruptibleSleep(opts.signal);
  const engine = deps.engine({ sleep });
  const laneDeps = (e: ApplyEngine): LaneCommandDeps => ({ ...deps, engine: e });
  const onEvent = opts.onEvent;
  let job: SmokeJob | undefined;
  let touched = false;
  let gone = false;

  // A function, not a narrowed property read: the signal aborts while the run awaits.
  const aborted = (): boolean => opts.signal?.aborted === true;
  const step = async (name: SmokeStepName, fn: () => Promise<string>): Promise<void> => {
    if (aborted()) throw new SmokeInterruptedError();
    opts.onStepStart?.(name);
    const s = clock.now();
    try {
      const detail = await fn();
      record({ name, status: "ok", elapsedMs: clock.now() - s, detail });
    } catch (err) {
      const interrupted = aborted();
      record({ name, status: "failed", elapsedMs: clock.now() - s, code: interrupted ? "SMOKE_INTERRUPTED" : errCode(err), detail: errMessage(err) });
      throw err;
    }
  };
  const runAction = async (e: ApplyEngine, action: Action, op?: "restart" | "remove"): Promise<ApplyReport> => {
    const report = await e.run(
      { planId: `smoke-${runId}-${action.kind}`, actions: [action] },
      {
        ...(op === undefined ? {} : { operator: { op, force: false, forcedBy: opts.operator, deadlineMs: opts.drainDeadlineMs } }),
        ...(onEvent === undefined ? {} : { onEvent }),
      },
    );
    const o = report.outcomes[0];
    if (o === undefined || o.status !== "succeeded") {
      throw new StepFailure((o?.code ?? "SMOKE_FAILED") as "SMOKE_FAILED", `${action.kind} ${o?.status ?? "not run"}${o?.message === undefined ? "" : `: ${o.message}`}`);
    }
    return report;
  };
  const onlineWithLabels = async (): Promise<string | undefined> => {
    const list = await deps.github.listRunners(target.scope);
    const r = list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${laneId}`));
    if (r === undefined) return undefined;
    const custom = r.labels.filter((l) => l.type !== "read-only").map((l) => l.name).sort();
    if (r.status !== "online" || custom.join(",") !== [...labels].sort().join(",")) return undefined;
    return `runner ${r.id} (${r.name}) online with ${custom.join(", ")}`;
  };
  const poll = async (what: string, probe: () => Promise<string | undefined>, s: (ms: number) => Promise<void>): Promise<string> => {
    const until = clock.now() + CHECK_TIMEOUT_MS;
    let last: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (err) {
        if (err instanceof SmokeInterruptedError) throw err;
        last = err;
      }
      if (clock.now() >= until) throw new StepFailure("SMOKE_FAILED", `${what}${last === undefined ? "" : ` (${errMessage(last)})`}`);
      await s(1_000);
    }
  };
  const goneCheck = async (since: number): Promise<string | undefined> => {
    const list = await deps.github.listRunners(target.scope);
    if (!list.complete) throw new Error("GitHub's runner list was incomplete");
    const reg = list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${laneId}`));
    if (reg !== undefined) throw new Error(`registration ${reg.id} still exists`);
    const s = await deps.inventory.latest(target.hostId);
    if (s === undefined || s.receivedAtMs < since) throw new Error(`no inventory from ${target.hostId} since the removal`);
    if (s.snapshot.lanes.some((l) => l.laneId === laneId)) throw new Error(`${target.hostId} still reports the lane`);
    if ((await deps.store.get(laneId)) !== undefined) throw new Error("the lane record still exists");
    return `no registration on GitHub, no ${target.poolPolicy.backend === "container" ? "container" : "unit"} on ${target.hostId}, no record`;
  };

  let failure: unknown;
  try {
    await step("create", async () => {
      touched = true; // the engine writes the record first: from here on there may be something to clean up
      const mark = { runId, label, leaseUntilMs: clock.now() + opts.leaseMs };
      const r = await runAction(engine, smokeCreateAction(deps.policy, target, laneId, mark));
      return `created and verified online by the engine in ${r.outcomes[0]?.elapsedMs ?? 0} ms`;
    });
    await step("online", () => poll(`${laneId} is not online with exactly its smoke labels`, onlineWithLabels, sleep));
    if (target.workflow !== undefined) {
      const wf = target.workflow;
      const workflows = deps.workflows as GitHubWorkflows;
      await step("workflow", async () => {
        job = await runSmokeWorkflow({ workflows, now: () => clock.now(), sleep }, { ...wf, inputName: opts.inputName }, label, laneId, opts.jobTimeoutMs, () => undefined);
        return `job ${job.jobId} of run ${job.runId} ran on ${laneId} and succeeded`;
      });
    }
    if (opts.lingerMs > 0) await sleep(opts.lingerMs);
    await step("restart", async () => {
      const v = await laneView(laneDeps(engine), laneId);
      await runAction(engine, smokeRestartAction(deps.policy, v, label), "restart");
      return "drained, restarted and verified online; smoke labels restored";
    });
    await step("online-again", () => poll(`${laneId} is not back online with its smoke labels`, onlineWithLabels, sleep));
    const removedAt = clock.now();
    await step("remove", async () => {
      const v = await laneView(laneDeps(engine), laneId);
      await runAction(engine, operatorAction("remove", v, deps.policy, { force: false }), "remove");
      return "drained, stopped, deregistered, deleted, verified gone";
    });
    await step("gone", async () => {
      const d = await poll(`${laneId} is not gone`, () => goneCheck(removedAt), sleep);
      gone = true;
      return d;
    });
  } catch (err) {
    failure = err;
  }

  const leftovers: SmokeLeftover[] = [];
  if (failure !== undefined && touched && !gone) {
    // Clean up with a fresh engine: the first SIGINT ended the run's waits, only a second one ends these.
    const hardSleep = interruptibleSleep(opts.hardSignal);
    const cleanEngine = deps.engine({ sleep: hardSleep });
    opts.onStepStart?.("cleanup");
    const s = clock.now();
    try {
      const since = clock.now();
      // A view from an inventory taken after the failure: what the host has now, not before.
      await poll(`no fresh inventory from ${target.hostId}`, async () => ((await deps.inventory.latest(target.hostId))?.receivedAtMs ?? 0) > since ? "fresh" : undefined, hardSleep);
      let v;
      try {
        v = await laneView(laneDeps(cleanEngine), laneId);
      } catch (err) {
        if (errCode(err) !== "LANE_NOT_FOUND") throw err;
      }
      if (v === undefined) {
        record({ name: "cleanup", status: "ok", elapsedMs: clock.now() - s, detail: "nothing of the lane was left" });
      } else {
        const action = smokeCleanupAction(deps.policy, v);
        await runAction(cleanEngine, action, action.kind === "remove" ? "remove" : undefined);
        const d = await poll(`${laneId} is not gone`, () => goneCheck(since), hardSleep);
        record({ name: "cleanup", status: "ok", elapsedMs: clock.now() - s, detail: `${action.kind}: ${d}` });
      }
    } catch (err) {
      record({ name: "cleanup", status: "failed", elapsedMs: clock.now() - s, code: errCode(err), detail: errMessage(err) });
      const busy = errCode(err) === "DRAIN_DEADLINE" ? " (a job still runs on it; nothing was killed)" : "";
      leftovers.push({
        what: `lane ${laneId} of ${target.scope} on ${target.hostId}${busy}: ${errMessage(err)}`,
        command: `lanekeeper lanes remove ${laneId}`,
      });
    }
  }
  // Both audit chains, after the run and after any clean-up: they must verify either way.
  if (opts.hardSignal?.aborted !== true) {
    opts.onStepStart?.("audit");
    const s = clock.now();
    try {
      const a = await deps.verifyAudit(target.hostId);
      record({ name: "audit", status: a.ok ? "ok" : "failed", elapsedMs: clock.now() - s, detail: a.detail, ...(a.ok ? {} : { code: "AUDIT_BROKEN" }) });
    } catch (err) {
      record({ name: "audit", status: "failed", elapsedMs: clock.now() - s, code: errCode(err), detail: errMessage(err) });
    }
  }
  const interrupted = aborted();
  return {
    ok: failure === undefined && leftovers.length === 0 && steps.every((x) => x.status === "ok"),
    runId,
    scope: target.scope,
    hostId: target.hostId,
    pool: target.pool,
    backend: target.poolPolicy.backend,
    laneId,
    label,
    interrupted,
    steps,
    ...(job === undefined ? {} : { job }),
    leftovers,
    elapsedMs: clock.now() - t0,
  };
}

export type { SmokeTarget };
