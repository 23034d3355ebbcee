/**
 * The health rules, as pure functions: restart backoff, the crash-loop breaker and what a stopped runner means
 * (contract 2.4: `run.sh` exits 0 for nearly everything, so the exit code alone says little; the runner's console
 * and whether `.runner` still exists say more).
 */
import type { RuntimeActivity } from "../runtimes/lane-runtime.js";
import type { HealthName, LaneState } from "./lane-state.js";
import { REGISTRATION_DELETED_TEXT } from "./runner-settings.js";

/** Restart policy (the config's `health` section). */
export interface HealthPolicy {
  /** Health restarts allowed within `windowMs`; one more failure marks the lane needs-attention. */
  readonly maxRestarts: number;
  readonly windowMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

/** Stable attention reasons. */
export type AttentionReason =
  | "CRASH_LOOP"
  | "REGISTRATION_DELETED"
  | "NOT_CONFIGURED"
  | "RUNTIME_MISSING"
  | "CREATE_INCOMPLETE"
  | "REMOVE_INCOMPLETE"
  | "UPGRADE_INCOMPLETE"
  | "START_FAILED";

/**
 * Delay before the next health restart: the first restart after a healthy period is immediate (a runner killed
 * once should be back at once), then `base · 2^(n-1)` up to `max`.
 */
export function backoffDelayMs(restartsInWindow: number, p: HealthPolicy): number {
  if (restartsInWindow <= 0) return 0;
  return Math.min(p.backoffMaxMs, p.backoffBaseMs * 2 ** Math.min(restartsInWindow - 1, 30));
}

/** Restart times still inside the window. */
export function pruneRestarts(restarts: readonly number[], nowMs: number, windowMs: number): number[] {
  return restarts.filter((t) => nowMs - t < windowMs);
}

/** What the health loop should do with one lane. */
export type HealthDecision =
  | { readonly kind: "healthy" }
  | { readonly kind: "wait" }
  | { readonly kind: "schedule"; readonly atMs: number }
  | { readonly kind: "restart" }
  | { readonly kind: "idle-unarmed" }
  | { readonly kind: "attention"; readonly reason: AttentionReason; readonly health: HealthName };

/** Inputs of {@link decideHealth}. */
export interface HealthInput {
  readonly state: LaneState;
  readonly mode: "persistent" | "ephemeral";
  readonly activity: RuntimeActivity;
  readonly nowMs: number;
  readonly policy: HealthPolicy;
  /** Runner console of the last run (only needed when the lane is down). */
  readonly console: string;
  /**
   * Whether `.runner` exists (only needed when the lane is down); `undefined` when it could not be read right
   * now (e.g. the engine is still tearing the container down): decide on the next pass.
   */
  readonly runnerConfigured: boolean | undefined;
}

/** Decide for a lane the agent wants running (not held, not needing attention). */
export function decideHealth(i: HealthInput): HealthDecision {
  if (i.activity === "running") return { kind: "healthy" };
  if (i.activity === "starting" || i.activity === "stopping") return { kind: "wait" };
  if (i.activity === "missing") return { kind: "attention", reason: "RUNTIME_MISSING", health: "unknown" };
  if (i.console.includes(REGISTRATION_DELETED_TEXT)) {
    return { kind: "attention", reason: "REGISTRATION_DELETED", health: "registration-deleted" };
  }
  if (i.runnerConfigured === undefined) return { kind: "wait" };
  if (!i.runnerConfigured) {
    // An ephemeral runner deletes .runner after its one job: done, waiting for a fresh JIT config.
    if (i.mode === "ephemeral") return { kind: "idle-unarmed" };
    return { kind: "attention", reason: "NOT_CONFIGURED", health: "unknown" };
  }
  const restarts = pruneRestarts(i.state.restarts, i.nowMs, i.policy.windowMs);
  if (restarts.length >= i.policy.maxRestarts) return { kind: "attention", reason: "CRASH_LOOP", health: "crash-loop" };
  if (i.state.health !== "restarting" || i.state.nextRestartAtMs === 0) {
    // First sighting of this failure: schedule by backoff (possibly now).
    const at = i.nowMs + backoffDelayMs(restarts.length, i.policy);
    return at <= i.nowMs ? { kind: "restart" } : { kind: "schedule", atMs: at };
  }
  return i.nowMs >= i.state.nextRestartAtMs ? { kind: "restart" } : { kind: "wait" };
}

/** Where to look and what to run, per attention reason: named commands, no guesswork. */
export function recoveryNote(
  reason: AttentionReason,
  ctx: { laneId: string; backend: "systemd" | "container"; laneDir: string; runtimeName: string; restarts?: number; windowMs?: number },
): string {
  const logs =
    ctx.backend === "systemd"
      ? `${ctx.laneDir}/runner.log and ${ctx.laneDir}/runner/_diag/`
      : `\`podman logs ${ctx.runtimeName}\` (or \`docker logs ${ctx.runtimeName}\`)`;
  const status = `\`lanekeeper-agent status\` on this host`;
  switch (reason) {
    case "CRASH_LOOP":
      return (
        `Lane ${ctx.laneId} stopped ${ctx.restarts ?? 0} times within ${Math.round((ctx.windowMs ?? 0) / 1000)} s and was left stopped. ` +
        `Read ${logs}, fix the cause, then run \`lanekeeper lanes restart ${ctx.laneId}\` on the coordinator (it clears this state).`
      );
    case "REGISTRATION_DELETED":
      return (
        `The GitHub registration of lane ${ctx.laneId} was deleted, so its runner cannot connect; the agent will not restart it. ` +
        `Recreate it: \`lanekeeper lanes remove ${ctx.laneId}\` (no remove token is needed), then \`lanekeeper apply\`.`
      );
    case "NOT_CONFIGURED":
      return (
        `Lane ${ctx.laneId} has no .runner file (its runner is not registered) and cannot run. ` +
        `Recreate it: \`lanekeeper lanes remove ${ctx.laneId}\`, then \`lanekeeper apply\`. Check ${status}.`
      );
    case "RUNTIME_MISSING":
      return (
        `The ${ctx.backend === "systemd" ? "unit" : "container"} ${ctx.runtimeName} of lane ${ctx.laneId} disappeared. ` +
        `Recreate the lane: \`lanekeeper lanes remove ${ctx.laneId}\`, then \`lanekeeper apply\`.`
      );
    case "CREATE_INCOMPLETE":
      return (
        `Creating lane ${ctx.laneId} was interrupted after its runner registered. The lane is kept (stopped) so its registration is ` +
        `not orphaned. Start it with \`lanekeeper lanes restart ${ctx.laneId}\`, or delete it with \`lanekeeper lanes remove ${ctx.laneId}\`.`
      );
    case "REMOVE_INCOMPLETE":
      return (
        `Removing lane ${ctx.laneId} was interrupted before its runner was deregistered (the remove token is never stored). ` +
        `The lane is stopped. Run \`lanekeeper lanes remove ${ctx.laneId}\` again on the coordinator: it sends a fresh remove token.`
      );
    case "UPGRADE_INCOMPLETE":
      return (
        `Upgrading the runner of lane ${ctx.laneId} was interrupted and could be neither finished nor undone: its runner files ` +
        `(runner/ and runner.old/ under ${ctx.laneDir}) are missing or not directories. The lane is stopped. Recreate it: ` +
        `\`lanekeeper lanes remove ${ctx.laneId}\`, then \`lanekeeper apply\` (apply also deletes the GitHub registration the lane leaves behind).`
      );
    case "START_FAILED":
      return (
        `Lane ${ctx.laneId} is registered but failed to start. Read ${logs}. If the cause is outside the lane (disk, ` +
        `permissions, a dependency), fix it and run \`lanekeeper lanes restart ${ctx.laneId}\`. If the lane's own runner ` +
        `files are broken (each lane runs its own copy, made at create), recreate it: \`lanekeeper lanes remove ${ctx.laneId}\`, ` +
        `then \`lanekeeper apply\`.`
      );
  }
}
