import {
  Backend,
  carriesLaneIdentity,
  drainingLabels,
  identityLabels,
  LANE_LABEL_PREFIX,
  LaneMode,
  parseDrainingLabels,
  parseScope,
  type ActionKind as IntentActionKind,
  type LaneSpec,
} from "@lanekeeper/shared";
import type { DispatchAction } from "../dispatch/intent-builder.js";
import { isAnswered, jobRunning, removeDone, type AnsweredOutcome, type IntentOutcome } from "../dispatch/intent-outcome.js";
import { waitUntilIdle } from "../drain/drain-protocol.js";
import { GitHubNotFoundError, GitHubUnreachableError } from "../github/github-errors.js";
import type { GitHubRunner } from "../github/github-types.js";
import { recordWithout, type LaneRecord } from "../observe/lane-record.js";
import type { PlanStep } from "../plan/action.js";
import { cut, errCode } from "./action-outcome.js";
import type { ActionState } from "./action-state.js";
import type { ObservedAfterFailure } from "./recovery-note.js";
import { agentReasonCode, StepFailure } from "./apply-errors.js";
import type { ApplyRunOptions, ResolvedApplyOptions } from "./apply-options.js";
import { FreshView, isReadFailure } from "./fresh-view.js";
import { runnerDownloadFor } from "./runner-download.js";
import { pickRunnerGroup } from "./runner-group.js";
import { UpgradeSteps } from "./upgrade-steps.js";
import { LISTING_BATCH_MS } from "./limits.js";
import { ScopeListings } from "./scope-listings.js";

function customLabels(r: GitHubRunner): string[] {
  return r.labels.filter((l) => l.type !== "read-only").map((l) => l.name);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/**
 * The steps of actions (see `PlanStep`): lane records, GitHub labels and registrations, intents to the agent, the
 * drain wait and the verifications. Each step is idempotent, reads and updates the action's {@link ActionState},
 * and throws a {@link StepFailure} (or the GitHub or store error) when it cannot be done.
 */
export class ActionSteps {
  /** The steps only an upgrade has, and its rollback. */
  readonly upgrades: UpgradeSteps;
  /** Listings shared by the actions running side by side (guards' views and `verify-online`). */
  private readonly listings: ScopeListings;

  constructor(private readonly o: ResolvedApplyOptions) {
    this.listings = new ScopeListings(o.github, o.sleep, LISTING_BATCH_MS);
    this.upgrades = new UpgradeSteps(o, {
      send: (st, action, opts) => this.send(st, action, opts),
      expectOk: (out, what) => this.expectOk(out, what),
      currentRegistration: (st) => this.currentRegistration(st),
      restoreLabels: (st, opts) => this.restoreLabels(st, opts),
    });
  }

  /** A view over fresh reads: GitHub, the lane store and the newest verified inventories. */
  view(): FreshView {
    const github = { listRunners: (scope: string) => this.listings.listing(scope), getRunner: (scope: string, id: number) => this.o.github.getRunner(scope, id) };
    return new FreshView({ github, store: this.o.store, inventory: this.o.inventory, clock: this.o.clock, inventoryMaxAgeMs: this.o.inventoryMaxAgeMs });
  }

  /**
   * A systemd create's spec with the archive URL and SHA-256 of its runner version from the scope's downloads
   * endpoint. Without an entry (or when GitHub cannot be read) the spec goes as is and the agent falls back to
   * an operator-staged version; the create then fails there, not here, if none is staged.
   */
  private async withRunnerDownload(spec: LaneSpec, scope: string, hostId: string): Promise<LaneSpec> {
    if (spec.backend !== Backend.BACKEND_SYSTEMD || spec.runnerDownload !== undefined) return spec;
    try {
      const apps = await this.o.github.listRunnerDownloads(scope);
      const arch = (await this.view().host(hostId))?.snapshot.capabilities?.arch;
      const runnerDownload = runnerDownloadFor(spec, apps, arch);
      return runnerDownload === undefined ? spec : { ...spec, runnerDownload };
    } catch {
      return spec;
    }
  }

  /** Carry out one step; `back-to-wait` when the agent refused to stop the lane because a job started. */
  async run(st: ActionState, step: PlanStep, opts: ApplyRunOptions): Promise<"ok" | "back-to-wait"> {
    const a = st.action;
    switch (step) {
      case "write-record":
        await this.writeRecord(st, opts);
        return "ok";
      case "delete-record":
        if (st.record !== undefined) {
          await this.o.store.delete(a.laneId, st.record.revision);
          st.record = undefined;
        }
        return "ok";
      case "set-draining-labels":
        await this.setLabels(st, drainingLabels({ laneId: a.laneId }), true);
        return "ok";
      case "restore-labels":
        await this.restoreLabels(st, opts);
        return "ok";
      case "set-labels":
        if (a.kind !== "relabel") return "ok";
        await this.setLabels(st, a.to, false);
        return "ok";
      case "verify-labels": {
        if (a.kind !== "relabel") return "ok";
        const r = await this.o.github.getRunner(a.scope, a.runnerId);
        if (r === undefined) throw new StepFailure("GITHUB_NOT_FOUND", `runner ${a.runnerId} is gone`);
        if (!sameSet(customLabels(r), a.to)) throw new StepFailure("LABELS_DIFFER", `runner ${a.runnerId} carries ${customLabels(r).join(",")}`);
        return "ok";
      }
      case "mint-registration":
        this.o.leases?.assertHeld(st.operationId);
        await this.mintRegistration(st);
        return "ok";
      case "mint-remove-token": {
        const reg = await this.currentRegistration(st);
        if (reg !== undefined) st.removeToken = Buffer.from((await this.o.github.createRemoveToken(a.scope)).token.reveal(), "utf8");
        return "ok";
      }
      case "send-create": {
        if (a.kind !== "create") return "ok";
        const secret = st.secret;
        if (secret === undefined) throw new StepFailure("INTERNAL", "no registration was minted");
        st.maybeCreated = true;
        const spec = await this.withRunnerDownload(a.spec, a.scope, a.hostId);
        const out = await this.send(st, { kind: "create", spec, registration: secret }, opts);
        secret.fill(0);
        st.secret = undefined;
        // A refused or failed create may be the shared token's fault (revoked): the next create asks for a new one.
        if (out.kind !== "succeeded" && a.spec.mode !== LaneMode.LANE_MODE_EPHEMERAL) this.o.registrationTokens.forget(a.scope);
        this.expectOk(out, "create");
        st.observed = out.result.observed;
        if (st.runnerId === undefined && out.result.observed !== undefined && out.result.observed.runnerId > 0) st.runnerId = out.result.observed.runnerId;
        return "ok";
      }
      case "send-drain": {
        const out = await this.send(st, { kind: "drain", laneId: a.laneId }, opts);
        this.expectOk(out, "drain");
        st.agentDrained = true;
        st.drainSince = out.result.finishedAtMs;
        st.drainStartedAtMs = this.o.clock.now();
        return "ok";
      }
      case "send-arm": {
        // Re-arm an ephemeral lane with the JIT config minted for it (planner action `arm`).
        if (a.kind !== "arm") return "ok";
        const secret = st.secret;
        if (secret === undefined) throw new StepFailure("INTERNAL", "no JIT config was minted");
        const out = await this.send(st, { kind: "arm", laneId: a.laneId, jitConfig: secret }, opts);
        secret.fill(0);
        st.secret = undefined;
        this.expectOk(out, "arm");
        return "ok";
      }
      case "send-undrain": {
        const out = await this.send(st, { kind: "undrain", laneId: a.laneId }, opts);
        this.expectOk(out, "undrain");
        st.agentDrained = false;
        return "ok";
      }
      case "wait-idle":
        await this.waitIdle(st, opts);
        return "ok";
      case "send-restart": {
        const out = await this.send(st, { kind: "restart", laneId: a.laneId, force: st.forced }, opts);
        if (jobRunning(out) && !st.forced) return "back-to-wait";
        this.expectOk(out, "restart");
        return "ok";
      }
      case "send-remove": {
        const out = await this.send(
          st,
          { kind: "remove", laneId: a.laneId, force: st.forced, ...(st.removeToken === undefined ? {} : { removeToken: st.removeToken }) },
          opts,
        );
        st.removeToken?.fill(0);
        st.removeToken = undefined;
        if (jobRunning(out) && !st.forced) {
          // The remove token was used up for nothing; a fresh one is minted on the way back.
          return "back-to-wait";
        }
        if (!removeDone(out)) this.expectOk(out, "remove");
        st.stopped = true;
        st.removedSince = out.result.finishedAtMs;
        return "ok";
      }
      case "delete-registration":
        await this.deleteRegistration(st);
        return "ok";
      case "verify-online":
        await this.verifyOnline(st);
        return "ok";
      case "verify-gone":
        await this.verifyGone(st);
        return "ok";
      case "send-upgrade":
        if (a.kind !== "upgrade") return "ok";
        return this.upgrades.sendUpgrade(st, a.to, opts);
      case "verify-upgraded":
        if (a.kind !== "upgrade") return "ok";
        await this.upgrades.verifyUpgraded(st, a.to);
        return "ok";
    }
  }

  /** `restore-labels`: the canonical labels back on GitHub, and (restart, upgrade) the agent's drain mark lifted. */
  private async restoreLabels(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    const labels = a.kind === "undrain" || a.kind === "restart" || a.kind === "upgrade" ? a.labels : this.canonical(st);
    await this.setLabels(st, labels, false);
    if ((a.kind === "restart" || a.kind === "upgrade") && st.agentDrained) {
      // The action drained the agent too; clear its mark, or the next plan would see a leftover drain.
      const out = await this.send(st, { kind: "undrain", laneId: a.laneId }, opts);
      if (a.kind === "upgrade") this.expectOk(out, "undrain");
      st.agentDrained = false;
    }
  }

  private canonical(st: ActionState): string[] {
    const a = st.action;
    const pool = Object.hasOwn(this.o.policy.pools, a.pool) ? this.o.policy.pools[a.pool] : undefined;
    return [...identityLabels({ laneId: a.laneId, hostId: a.hostId, pool: a.pool }), ...(pool?.labels ?? [])];
  }

  /** Write the lane record as this action's kind and progress require (compare-and-set on the revision read). */
  private async writeRecord(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    const now = this.o.clock.now();
    const cur = st.record;
    const put = async (next: LaneRecord): Promise<void> => {
      st.record = cur === undefined ? await this.o.store.create(next) : await this.o.store.update(next, cur.revision);
    };
    const base = (): LaneRecord =>
      cur ?? { laneId: a.laneId, scope: a.scope, pool: a.pool, hostId: a.hostId, state: "creating", createdAtMs: now, updatedAtMs: now };
    switch (a.kind) {
      case "create":
        if (cur === undefined) {
          await put({ ...base(), state: "creating", operationId: st.operationId, ...(a.smoke === undefined ? {} : { smoke: a.smoke }) });
        } else if (st.stepsDone.length === 0) {
          // A resumed create (plan/interrupted-actions.ts): claim the record for this operation (compare-and-set),
          // so a second coordinator resuming it too loses here, before anything is sent.
          await put({ ...recordWithout(cur, "attention"), state: "creating", updatedAtMs: now, operationId: st.operationId });
        } else {
          await put({
            ...recordWithout(cur, "attention", "drainReason"),
            state: "active",
            updatedAtMs: now,
            operationId: st.operationId,
            ...(st.runnerId === undefined ? {} : { runnerId: st.runnerId }),
          });
        }
        return;
      case "drain": {
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        const reason = opts.operator?.op === "drain" ? "operator" : a.drainReason;
        await put({ ...recordWithout(cur, "attention"), state: "draining", drainReason: reason, updatedAtMs: now, operationId: st.operationId });
        return;
      }
      case "remove":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...recordWithout(cur, "attention"), state: "removing", updatedAtMs: now, operationId: st.operationId });
        return;
      case "undrain":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...recordWithout(cur, "attention", "drainReason"), state: "active", updatedAtMs: now, operationId: st.operationId });
        return;
      case "update-record":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({
          ...recordWithout(cur, ...(a.changes.state === "active" ? (["orphan", "attention"] as const) : [])),
          ...(a.changes.state === undefined ? {} : { state: a.changes.state }),
          ...(a.changes.runnerId === undefined ? {} : { runnerId: a.changes.runnerId }),
          updatedAtMs: now,
          operationId: st.operationId,
        });
        return;
      case "arm":
        if (cur === undefined) throw new StepFailure("RECORD_MISSING", `lane ${a.laneId} has no record`);
        await put({ ...cur, ...(st.runnerId === undefined ? {} : { runnerId: st.runnerId }), updatedAtMs: now, operationId: st.operationId });
        return;
      case "mark-orphan":
        await put({ ...base(), state: "orphaned", orphan: { ...a.mark, markedAtMs: now }, updatedAtMs: now, operationId: st.operationId });
        return;
      default:
        return;
    }
  }

  private async setLabels(st: ActionState, labels: readonly string[], draining: boolean): Promise<void> {
    const reg = await this.currentRegistration(st);
    if (reg === undefined) {
      this.o.log?.info({ laneId: st.action.laneId }, "no registration: labels left as they are");
      return;
    }
    try {
      await this.o.github.setCustomLabels(st.action.scope, reg.id, labels);
    } catch (err) {
      if (err instanceof GitHubNotFoundError) return;
      // No answer to a request that may have gone out: the labels may have been swapped. Say so rather than "untouched".
      if (draining && err instanceof GitHubUnreachableError && err.maybeDelivered) {
        st.labelsDrained = true;
        st.labelsUncertain = true;
      }
      throw err;
    }
    st.labelsDrained = draining;
  }

  /** A fresh look at a lane after a failure: its registration on GitHub and the host's newest inventory. Never throws. */
  async observeLane(scope: string, laneId: string, hostId: string): Promise<ObservedAfterFailure> {
    const v = this.view();
    const reg = await v.registrationOf(scope, laneId);
    const host = await v.host(hostId);
    return {
      registration: isReadFailure(reg) ? "unknown" : reg === undefined ? "absent" : reg.status === "online" ? "online" : "offline",
      host: host === undefined ? "unknown" : host.snapshot.lanes.some((l) => l.laneId === laneId) ? "present" : "absent",
    };
  }

  /** The lane's registration now: by known runner id, else by its `lk-lane-` label. Undefined when gone. */
  private async currentRegistration(st: ActionState): Promise<GitHubRunner | undefined> {
    const a = st.action;
    if (st.runnerId !== undefined) {
      const r = await this.o.github.getRunner(a.scope, st.runnerId);
      if (r !== undefined) return r;
    }
    const list = await this.o.github.listRunners(a.scope);
    const r = list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${a.laneId}`));
    if (r !== undefined) st.runnerId = r.id;
    return r;
  }

  private async mintRegistration(st: ActionState): Promise<void> {
    const a = st.action;
    if (a.kind === "arm") {
      const jit = await this.o.github.generateJitConfig(a.scope, { name: a.runnerName, runnerGroupId: await this.runnerGroupId(a.scope), labels: a.labels });
      st.runnerId = jit.runner.id;
      st.secret = Buffer.from(jit.encodedJitConfig.reveal(), "utf8");
      return;
    }
    if (a.kind !== "create") return;
    if (a.spec.mode === LaneMode.LANE_MODE_EPHEMERAL) {
      const groupId = await this.runnerGroupId(a.scope);
      const jit = await this.o.github.generateJitConfig(a.scope, { name: a.laneId, runnerGroupId: groupId, labels: a.spec.labels });
      // A JIT config registers the runner at once: from here on, the lane is not untouched.
      st.maybeCreated = true;
      st.runnerId = jit.runner.id;
      st.secret = Buffer.from(jit.encodedJitConfig.reveal(), "utf8");
    } else {
      st.secret = Buffer.from((await this.o.registrationTokens.get(this.o.github, a.scope)).token.reveal(), "utf8");
    }
  }

  private async runnerGroupId(scope: string): Promise<number> {
    const s = parseScope(scope);
    if (s.kind === "repo") return 1;
    const want = this.o.policy.scopes[scope]?.runnerGroup;
    const g = pickRunnerGroup(await this.o.github.listRunnerGroups(s.org), want);
    if (g === undefined) {
      throw new StepFailure(
        "RUNNER_GROUP_NOT_FOUND",
        `runner group ${JSON.stringify(want ?? "Default")} does not exist in the organization ${s.org}: create it on GitHub, or name an existing group in the policy's scopes.${scope}.runnerGroup`,
      );
    }
    return g.id;
  }

  /**
   * Send an intent for the action and return the agent's answer. No answer at all (timeout, nobody listening,
   * unknown host, a reply that failed verification) fails the step with the dispatch code.
   */
  private async send(st: ActionState, action: DispatchAction, opts: ApplyRunOptions): Promise<AnsweredOutcome> {
    const a = st.action;
    const t0 = this.o.clock.now();
    const forcedBy = st.forced && opts.operator !== undefined ? opts.operator.forcedBy : undefined;
    // An action whose lease lapsed may already be resumed or rolled back by another coordinator: send nothing.
    this.o.leases?.assertHeld(st.operationId);
    let out: IntentOutcome;
    try {
      out = await this.o.dispatcher.deliver({
        hostId: a.hostId,
        action,
        operationId: st.operationId,
        ...(forcedBy === undefined ? {} : { forcedBy }),
        ...(this.o.leases === undefined ? {} : { beforeSend: () => this.o.leases?.assertHeld(st.operationId) }),
      });
    } catch (err) {
      opts.onEvent?.({ type: "intent", hostId: a.hostId, laneId: a.laneId, action: action.kind, result: errCode(err), latencyMs: this.o.clock.now() - t0 });
      throw err;
    }
    st.intentIds.push(...out.intentIds);
    const result = out.kind === "succeeded" ? "ok" : out.kind === "refused" ? "rejected" : out.kind === "failed" ? "failed" : out.code;
    opts.onEvent?.({ type: "intent", hostId: a.hostId, laneId: a.laneId, action: action.kind, result, latencyMs: this.o.clock.now() - t0 });
    if (!isAnswered(out)) throw new StepFailure(out.code, out.message);
    return out;
  }

  /** Fail the step unless the agent carried the action out; the code is the agent's (or `AGENT_REJECTED` / `AGENT_FAILED`). */
  expectOk(out: AnsweredOutcome, what: IntentActionKind): asserts out is Extract<AnsweredOutcome, { kind: "succeeded" }> {
    if (out.kind === "succeeded") return;
    const refused = out.kind === "refused";
    const code = out.code === "" ? (refused ? "AGENT_REJECTED" : "AGENT_FAILED") : agentReasonCode(out.code);
    throw new StepFailure(code, `${what} on ${out.result.hostId} ${refused ? "refused" : "failed"}: ${cut(out.message)}`, {
      details: { rejected: refused },
    });
  }

  private async waitIdle(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    const now = this.o.clock.now();
    st.drainStartedAtMs ??= now;
    // A resumed removal whose drain took effect before (no send-drain of its own): the host was seen draining, so
    // any snapshot counts, and a job that starts before the stop sends it back to this wait like any drain.
    st.drainSince ??= 0;
    // `--force` comes with an explicit deadline (the CLI and runLaneCommand insist): never "kill now" by default.
    const deadlineMs = opts.operator?.deadlineMs ?? this.o.deadlineMs;
    st.drainDeadlineAtMs ??= st.drainStartedAtMs + deadlineMs;
    const res = await waitUntilIdle(
      {
        laneId: a.laneId,
        hostId: a.hostId,
        scope: a.scope,
        runnerId: st.runnerId,
        sinceTakenAtMs: st.drainSince ?? 0,
        startedAtMs: st.drainStartedAtMs,
        deadlineAtMs: st.drainDeadlineAtMs,
        settleMs: this.o.settleMs,
        pollMs: this.o.pollMs,
      },
      {
        github: this.o.github,
        inventory: this.o.inventory,
        clock: this.o.clock,
        // A drain whose lease lapsed (this process was frozen or cut off) may already be resumed by another
        // coordinator: stop waiting at once (OPERATION_LEASE_LOST) instead of racing it to the stop.
        sleep: async (ms) => {
          await this.o.sleep(ms);
          this.o.leases?.assertHeld(st.operationId);
        },
        inventoryMaxAgeMs: this.o.inventoryMaxAgeMs,
        ...(opts.onEvent === undefined ? {} : { onProgress: opts.onEvent }),
      },
    );
    if (res.kind === "idle") {
      if (res.runnerId !== undefined) st.runnerId = res.runnerId;
      return;
    }
    if (opts.operator?.force === true) {
      st.forced = true;
      this.o.log?.warn({ laneId: a.laneId, forcedBy: opts.operator.forcedBy }, "drain deadline passed: forcing as the operator asked");
      return;
    }
    throw new StepFailure("DRAIN_DEADLINE", `${res.detail} after ${Math.round(res.elapsedMs / 1000)} s`, { details: { waitingFor: res.reason } });
  }

  private async deleteRegistration(st: ActionState): Promise<void> {
    const a = st.action;
    const reg = await this.currentRegistration(st);
    if (reg === undefined) return;
    const rec = st.record;
    const expected = rec?.orphan?.runnerId ?? rec?.runnerId ?? ("runnerId" in a ? a.runnerId : undefined);
    if (expected !== undefined && reg.id !== expected) {
      throw new StepFailure("REGISTRATION_MISMATCH", `the registration of ${a.laneId} is runner ${reg.id}, the record says ${expected}: not deleted`);
    }
    const names = reg.labels.map((l) => l.name);
    // The reduced draining set names no host: it is this lane's runner only when the record names that runner id.
    const reduced = parseDrainingLabels(names) === a.laneId;
    if (reduced && (expected === undefined || reg.id !== expected)) {
      throw new StepFailure("REGISTRATION_MISMATCH", `runner ${reg.id} carries only the draining labels of ${a.laneId} and no record names it: not deleted`);
    }
    if (!carriesLaneIdentity(names, { laneId: a.laneId, hostId: a.hostId, pool: a.pool })) {
      throw new StepFailure("REGISTRATION_MISMATCH", `runner ${reg.id} no longer carries the identity labels of ${a.laneId}: not deleted`);
    }
    await this.o.github.deleteRunner(a.scope, reg.id);
  }

  private async verifyOnline(st: ActionState): Promise<void> {
    const a = st.action;
    const until = this.o.clock.now() + this.o.verifyTimeoutMs;
    const want = a.kind === "create" ? a.spec.labels : undefined;
    // A restart verifies while the lane is still drained: its reduced draining set counts as its identity.
    const identity = { laneId: a.laneId, hostId: a.hostId, pool: a.pool };
    let last = "not observed";
    for (;;) {
      try {
        // From the scope's shared listing (by runner id, else by the lane's label), not a GET per lane.
        const list = await this.listings.listing(a.scope);
        const r =
          (st.runnerId === undefined ? undefined : list.runners.find((x) => x.id === st.runnerId)) ??
          list.runners.find((x) => x.labels.some((l) => l.name === `${LANE_LABEL_PREFIX}${a.laneId}`));
        if (r !== undefined) st.runnerId = r.id;
        if (r === undefined) last = "no registration yet";
        else if (r.status !== "online") last = `runner ${r.id} is ${r.status}`;
        else if (want !== undefined && !sameSet(customLabels(r), want)) last = `runner ${r.id} carries ${customLabels(r).join(",")}`;
        else if (!carriesLaneIdentity(r.labels.map((x) => x.name), identity)) last = `runner ${r.id} lacks identity labels`;
        else return;
      } catch (err) {
        last = `GitHub: ${errCode(err)}`;
      }
      if (this.o.clock.now() >= until) throw new StepFailure("VERIFY_ONLINE_TIMEOUT", `${a.laneId} not online with its canonical labels (${last})`);
      await this.o.sleep(this.o.verifyPollMs);
    }
  }

  private async verifyGone(st: ActionState): Promise<void> {
    const a = st.action;
    const until = this.o.clock.now() + this.o.verifyTimeoutMs;
    let last = "not observed";
    for (;;) {
      const v = this.view();
      const reg = await v.registrationOf(a.scope, a.laneId);
      const byId = st.runnerId === undefined ? undefined : await v.runner(a.scope, st.runnerId);
      const host = await v.host(a.hostId);
      if (isReadFailure(reg)) last = `GitHub: ${reg.code}`;
      else if (reg !== undefined) last = `runner ${reg.id} still carries the lane's label`;
      else if (isReadFailure(byId)) last = `GitHub: ${byId.code}`;
      else if (byId !== undefined) last = `runner ${byId.id} still exists`;
      else if (host === undefined) last = "no fresh inventory from the host";
      else if (st.removedSince !== undefined && host.snapshot.takenAtMs < st.removedSince) last = "no inventory newer than the removal";
      else if (host.snapshot.lanes.some((l) => l.laneId === a.laneId)) last = "the host still reports the lane";
      else return;
      if (this.o.clock.now() >= until) throw new StepFailure("VERIFY_GONE_TIMEOUT", `${a.laneId} is not gone (${last})`);
      await this.o.sleep(this.o.verifyPollMs);
    }
  }

  /** After the last step: bring the record out of needs-attention for operator restarts that worked. */
  async afterSuccess(st: ActionState, opts: ApplyRunOptions): Promise<void> {
    const a = st.action;
    if (a.kind !== "restart" || st.record === undefined) return;
    const cur = st.record;
    if (cur.state === "active" && cur.attention === undefined) return;
    // An operator who restarted the lane has looked at it: its health-restart count starts afresh.
    const cleared = opts.operator === undefined ? [] : (["healthRestartsAtMs"] as const);
    st.record = await this.o.store.update(
      { ...recordWithout(cur, "attention", "drainReason", ...cleared), state: "active", updatedAtMs: this.o.clock.now(), operationId: st.operationId },
      cur.revision,
    );
  }
}
