/**
 * The health supervisor: one pass over every lane per tick. It audits local holds once, wipes a JIT config the
 * runner no longer needs, restarts dead runners with exponential backoff ({@link decideHealth}) and, on a crash
 * loop, a deleted registration, a missing `.runner` or a vanished unit, stops restarting and marks the lane
 * `needs-attention` with a recovery note. Lanes with an operation in flight are skipped for that pass.
 */
import { decideHealth, pruneRestarts } from "./health-policy.js";
import { errorCode, errorMessage, type LaneCore } from "./lane-core.js";
import { listHolds, type LaneHold } from "./lane-holds.js";
import type { BackendName, LaneRecord } from "./lane-marker.js";
import type { LaneRuntime, RuntimeLane, RuntimeStatus } from "../runtimes/lane-runtime.js";
import type { LaneStateName } from "./lane-state.js";

/** The health loop's work, one pass at a time (the daemon schedules the passes). */
export class LaneSupervisor {
  constructor(private readonly core: LaneCore) {}

  /**
   * One pass of the health loop over every lane: audit local holds once, wipe used secrets, restart dead runners
   * with backoff, and stop restarting (needs-attention) on a crash loop, a deleted registration or a vanished
   * unit. Lanes with an operation in flight are skipped this pass.
   */
  async superviseOnce(): Promise<void> {
    const ids = await this.core.opts.dirs.listIds();
    const byBackend = new Map<BackendName, LaneRecord[]>();
    for (const id of ids) {
      const rec = await this.core.cachedRecord(id);
      if (rec) byBackend.set(rec.backend, [...(byBackend.get(rec.backend) ?? []), rec]);
    }
    const holds = await listHolds(this.core.opts.stateDir);
    const work: Promise<void>[] = [];
    for (const [backend, recs] of byBackend) {
      const rt = this.core.opts.runtimes[backend];
      if (!rt) continue;
      let statuses: Map<string, RuntimeStatus>;
      try {
        statuses = await rt.inspectMany(recs.map((r) => r.laneId));
      } catch (err) {
        this.core.log.warn({ backend, err: errorMessage(err) }, "health: cannot inspect lanes");
        continue;
      }
      for (const rec of recs) {
        if (this.core.mutex.busy(rec.laneId)) continue;
        const status = statuses.get(rec.laneId);
        if (!status) continue;
        work.push(
          this.core.mutex
            .run(rec.laneId, () => this.superviseLane(rec, rt, status, holds.get(rec.laneId)))
            .catch((err: unknown) => this.core.log.warn({ laneId: rec.laneId, err: errorMessage(err) }, "health: lane check failed")),
        );
      }
    }
    await Promise.all(work);
  }

  private async superviseLane(rec: LaneRecord, rt: LaneRuntime, status: RuntimeStatus, hold: LaneHold | undefined): Promise<void> {
    const laneId = rec.laneId;
    if (await this.core.journal.get(laneId)) return;
    let st = await this.core.state(laneId);
    const holdReason = hold ? hold.reason : null;
    if (holdReason !== st.auditedHold) {
      // A local hold or release placed with the CLI: audit it once, from the single audit writer.
      await this.core.writeAudit("succeeded", holdReason !== null ? "hold" : "release", { operationId: "local" }, laneId, {
        ...(holdReason ? { message: `local hold: ${holdReason}` } : { message: "local hold released" }),
        details: { by: hold?.by ?? "local-operator" },
      });
      st = await this.core.setState(laneId, { auditedHold: holdReason });
    }
    const lane: RuntimeLane = { record: rec, laneDir: this.core.opts.dirs.dir(laneId) };
    if (status.activity === "running" && rec.mode === "ephemeral" && (await this.core.opts.dirs.envHasContent(laneId).catch(() => false))) {
      // The JIT config is needed only until the runner wrote .runner; then it must not stay on disk.
      if (await rt.runnerSettings(lane).catch(() => undefined)) await rt.clearSecrets(laneId);
    }
    if (st.desired !== "running" || hold || st.state === "needs-attention") {
      const observed: LaneStateName = st.state === "needs-attention" ? "needs-attention" : status.activity === "running" ? "running" : "stopped";
      if (observed !== st.state && st.state !== "removing") await this.core.setState(laneId, { state: observed });
      return;
    }
    if (st.state === "idle-unarmed" && status.activity !== "running") return;
    const now = this.core.clock.now();
    const down = status.activity !== "running";
    const decision = decideHealth({
      state: st,
      mode: rec.mode,
      activity: status.activity,
      nowMs: now,
      policy: this.core.opts.health,
      console: down ? await rt.consoleTail(lane).catch(() => "") : "",
      runnerConfigured: down
        ? await rt.runnerSettings(lane).then(
            (s) => s !== undefined,
            () => undefined,
          )
        : true,
    });
    const exit = status.exitCode !== undefined ? { lastExitCode: status.exitCode } : {};
    switch (decision.kind) {
      case "healthy":
        if (st.state !== "running" || st.health !== "healthy") await this.core.setState(laneId, { state: "running", health: "healthy", nextRestartAtMs: 0 });
        return;
      case "wait":
        return;
      case "schedule":
        await this.core.setState(laneId, { state: "failed", health: "restarting", nextRestartAtMs: decision.atMs, ...exit });
        return;
      case "idle-unarmed":
        await this.core.setState(laneId, { state: "idle-unarmed", health: "healthy", ...exit });
        return;
      case "attention": {
        const restarts = pruneRestarts(st.restarts, now, this.core.opts.health.windowMs);
        await this.core.setState(laneId, {
          state: "needs-attention",
          health: decision.health,
          attentionReason: decision.reason,
          recoveryNote: this.core.attention(decision.reason, rec, { restarts: restarts.length }),
          nextRestartAtMs: 0,
          ...exit,
        });
        await this.core.finalAudit("failed", "health", { operationId: "health" }, laneId, {
          reasonCode: decision.reason,
          message: `lane needs attention: ${decision.reason}`,
        });
        this.core.log.warn({ laneId, reason: decision.reason }, "lane needs attention");
        return;
      }
      case "restart": {
        // Re-verify lane.json right before acting; the runtime re-checks its own marker in start().
        await this.core.opts.dirs.read(laneId, { backend: rec.backend, runtimeName: rec.runtimeName });
        const ctx = { operationId: "health" };
        await this.core.writeAudit("planned", "health-restart", ctx, laneId, { details: { lastExitCode: status.exitCode ?? -1 } });
        await this.core.writeAudit("started", "health-restart", ctx, laneId);
        const restarts = [...pruneRestarts(st.restarts, now, this.core.opts.health.windowMs), now];
        await this.core.setState(laneId, { restarts, health: "restarting", nextRestartAtMs: 0, ...exit });
        try {
          await rt.start(laneId);
        } catch (err) {
          await this.core.finalAudit("failed", "health-restart", ctx, laneId, { reasonCode: errorCode(err), message: errorMessage(err) });
          await this.core.setState(laneId, { state: "failed" });
          return;
        }
        await this.core.setState(laneId, { state: "running" });
        await this.core.finalAudit("succeeded", "health-restart", ctx, laneId, { details: { restartsInWindow: restarts.length } });
        this.core.log.info({ laneId, restartsInWindow: restarts.length }, "health restart");
        return;
      }
    }
  }
}
