/**
 * Crash recovery: on start the agent finishes or rolls back every multi-step operation (create, remove, arm, upgrade) that
 * a crash interrupted, from the journal entry the operation left (see `operation-journal.ts` for the steps). No
 * secret is journaled, so nothing that needs one is retried: such an operation is rolled back, or the lane is kept
 * stopped and marked `needs-attention` with a recovery note.
 */
import { errorMessage, type LaneCore } from "./lane-core.js";
import type { RuntimeLane } from "../runtimes/lane-runtime.js";
import type { JournalEntry } from "./operation-journal.js";
import { recoverUpgrade } from "./upgrade-recovery.js";

/** The audit reason code of a recovery that left its lane needing attention. */
const INCOMPLETE_REASON: Readonly<Record<JournalEntry["op"], string>> = {
  create: "CREATE_INCOMPLETE",
  remove: "REMOVE_INCOMPLETE",
  // Kept as it always was: an arm's recovery never needs attention.
  arm: "REMOVE_INCOMPLETE",
  upgrade: "UPGRADE_INCOMPLETE",
};

/** What recovery did with one interrupted operation. */
export interface RecoveryAction {
  readonly laneId: string;
  readonly op: JournalEntry["op"];
  readonly step: string;
  readonly outcome: "rolled-back" | "rolled-forward" | "needs-attention";
  readonly message: string;
}

/** Journal replay at agent start. */
export class LaneRecovery {
  constructor(private readonly core: LaneCore) {}

  /**
   * Finish or roll back every operation a crash interrupted. Rules: nothing registered yet → roll back (delete
   * unit/container and directory); registered → roll forward without any secret (start the lane); a remove
   * interrupted before deregistration → keep the lane stopped and mark it needs-attention (the remove token is
   * never stored); after deregistration → finish deleting. A `config.sh` still running from the dead agent is
   * killed first.
   */
  async recover(): Promise<RecoveryAction[]> {
    const done: RecoveryAction[] = [];
    for (const laneId of await this.core.journal.pending()) {
      const entry = await this.core.journal.get(laneId).catch(() => undefined);
      if (!entry) {
        await this.core.journal.clear(laneId);
        continue;
      }
      const res = await this.recoverEntry(entry, (fn) => this.core.mutex.run(laneId, fn));
      done.push(res);
      this.core.log.warn({ laneId, op: entry.op, step: entry.step, outcome: res.outcome }, "recovered interrupted operation");
    }
    return done;
  }

  /**
   * Settle one interrupted operation, audited as `recover-<op>` (planned, started, terminal). `locked` runs the work
   * under the lane's mutex; a caller that already holds it (an upgrade finding its lane's interrupted upgrade) runs
   * it directly.
   */
  async recoverEntry(entry: JournalEntry, locked: (fn: () => Promise<RecoveryAction>) => Promise<RecoveryAction> = (fn) => fn()): Promise<RecoveryAction> {
    const laneId = entry.laneId;
    const ctx = { operationId: entry.operationId };
    const upgrade = entry.op === "upgrade" ? { from: entry.from, to: entry.to } : {};
    await this.core.writeAudit("planned", `recover-${entry.op}`, ctx, laneId, { details: { step: entry.step, ...upgrade } });
    await this.core.writeAudit("started", `recover-${entry.op}`, ctx, laneId);
    let version: string | undefined;
    const res = await locked(async () => {
      if (entry.op !== "upgrade") return this.recoverOne(entry);
      const r = await recoverUpgrade(this.core, entry);
      version = r.runnerVersion;
      return { laneId, op: entry.op, step: entry.step, outcome: r.outcome, message: r.message };
    }).catch(
      (err: unknown): RecoveryAction => ({
        laneId,
        op: entry.op,
        step: entry.step,
        outcome: "needs-attention",
        message: `recovery of the interrupted ${entry.op} failed: ${errorMessage(err)}; the journal entry is kept for the next start`,
      }),
    );
    await this.core.finalAudit(res.outcome === "needs-attention" ? "failed" : "succeeded", `recover-${entry.op}`, ctx, laneId, {
      reasonCode: res.outcome === "needs-attention" ? INCOMPLETE_REASON[entry.op] : "",
      message: res.message,
      details: { step: entry.step, outcome: res.outcome, ...upgrade, ...(version !== undefined ? { runnerVersion: version } : {}) },
    });
    return res;
  }

  private async recoverOne(entry: Exclude<JournalEntry, { op: "upgrade" }>): Promise<RecoveryAction> {
    const laneId = entry.laneId;
    const runtime = this.core.runtimeFor(entry.backend);
    const act = (outcome: RecoveryAction["outcome"], message: string): RecoveryAction => ({ laneId, op: entry.op, step: entry.step, outcome, message });
    if (entry.child) await this.core.processes.killIfSame(entry.child.pid, entry.child.startTime);
    const record = await this.core.opts.dirs.read(laneId).catch(() => undefined);
    const lane: RuntimeLane | undefined = record ? { record, laneDir: this.core.opts.dirs.dir(laneId) } : undefined;
    const registered = lane ? (await runtime.runnerSettings(lane).catch(() => undefined)) !== undefined : false;

    if (entry.op === "create") {
      const runtimeOwned = (await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned";
      const canRollForward = record && runtimeOwned && (registered || (entry.mode === "ephemeral" && entry.step !== "begin" && entry.step !== "dir"));
      if (entry.mode === "persistent" ? registered && record && runtimeOwned : canRollForward && (entry.step === "configured" || entry.step === "started")) {
        try {
          await runtime.start(laneId);
          const settings = await runtime.runnerSettings(lane as RuntimeLane).catch(() => undefined);
          await this.core.setState(laneId, { desired: "running", state: "running", health: "unknown", runnerId: settings?.agentId ?? 0, runnerName: settings?.agentName ?? laneId });
          await this.core.journal.clear(laneId);
          return act("rolled-forward", `create of ${laneId} was interrupted after step ${entry.step}; the runner is registered, so the lane was started`);
        } catch (err) {
          if (record) {
            await this.core.setState(laneId, {
              desired: "stopped",
              state: "needs-attention",
              attentionReason: "CREATE_INCOMPLETE",
              recoveryNote: this.core.attention("CREATE_INCOMPLETE", record),
            });
          }
          await this.core.journal.clear(laneId);
          return act("needs-attention", `create of ${laneId} was interrupted and could not be finished: ${errorMessage(err)}`);
        }
      }
      if (registered && record) {
        // Registered but the unit/container is gone or not ours: keep the directory and say so.
        await this.core.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "CREATE_INCOMPLETE", recoveryNote: this.core.attention("CREATE_INCOMPLETE", record) });
        await this.core.journal.clear(laneId);
        return act("needs-attention", `create of ${laneId} was interrupted after registration; kept for the operator`);
      }
      await this.core.rollbackCreate(laneId, runtime);
      await this.core.journal.clear(laneId);
      if (entry.child) {
        return act(
          "rolled-back",
          `create of ${laneId} was interrupted while config.sh ran (killed); everything it created was removed. If GitHub shows a runner named ${laneId} without a lane, ` +
            "it is an orphaned registration: `lanekeeper apply` deletes it",
        );
      }
      return act("rolled-back", `create of ${laneId} was interrupted after step ${entry.step} before any registration; everything it created was removed`);
    }

    if (entry.op === "remove") {
      const deregistered = entry.step === "deregistered" || entry.step === "runtime-removed" || entry.step === "dir-removed";
      // config.sh remove deletes .runner once GitHub deleted the registration: if it is gone, deregistration happened.
      if (deregistered || (entry.step === "stopped" && entry.child !== undefined && !registered && record !== undefined)) {
        if ((await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned") await runtime.remove(laneId);
        if (record) await this.core.opts.dirs.remove(laneId);
        await this.core.forget(laneId);
        await this.core.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted after step ${entry.step}; the deletion was finished`);
      }
      if (!record) {
        await this.core.forget(laneId);
        await this.core.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted; its directory is gone`);
      }
      if (!registered && entry.step === "stopped") {
        // Nothing to deregister (never configured): finishing needs no token.
        if ((await runtime.checkOwnership(laneId).catch(() => "foreign" as const)) === "owned") await runtime.remove(laneId);
        await this.core.opts.dirs.remove(laneId);
        await this.core.forget(laneId);
        await this.core.journal.clear(laneId);
        return act("rolled-forward", `remove of ${laneId} was interrupted; the runner was not registered, so the deletion was finished`);
      }
      if (entry.step === "begin") {
        const status = await runtime.inspect(laneId).catch(() => undefined);
        if (status?.activity === "running") {
          // Nothing was stopped yet: the lane is intact and keeps running; the coordinator retries the remove.
          await this.core.setState(laneId, { desired: "running", state: "running" });
          await this.core.journal.clear(laneId);
          return act("rolled-back", `remove of ${laneId} was interrupted before anything changed; the lane keeps running`);
        }
        // It may have been stopped before the crash; keep it stopped: a remove was asked for.
        await this.core.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE", recoveryNote: this.core.attention("REMOVE_INCOMPLETE", record) });
        await this.core.journal.clear(laneId);
        return act("needs-attention", `remove of ${laneId} was interrupted before deregistration; the lane is kept stopped`);
      }
      await this.core.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE", recoveryNote: this.core.attention("REMOVE_INCOMPLETE", record) });
      await this.core.journal.clear(laneId);
      return act("needs-attention", `remove of ${laneId} was interrupted before deregistration; the lane is kept stopped`);
    }

    // arm: a JIT config may sit in the env file; wipe it, and leave the lane idle for a fresh one.
    await runtime.clearSecrets(laneId).catch(() => undefined);
    if (entry.step === "started" && lane) {
      await this.core.setState(laneId, { desired: "running", state: "running" });
      await this.core.journal.clear(laneId);
      return act("rolled-forward", `arm of ${laneId} had started the runner`);
    }
    await this.core.setState(laneId, { state: "idle-unarmed" });
    await this.core.journal.clear(laneId);
    return act("rolled-back", `arm of ${laneId} was interrupted; the JIT config was wiped and the lane waits for a fresh one`);
  }
}
