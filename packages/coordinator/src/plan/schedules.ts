/**
 * Schedule windows of a scaling group: which are in force at the plan's instant, and the floor they set.
 */
import { lastCronStartMs, parseDurationString, type ScalingPolicy, type ScalingSchedule } from "@lanekeeper/shared";

/** A schedule window in force at the plan's instant. */
export interface ActiveSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly min: number;
  readonly idle: number | undefined;
  /** When this window started (ms since the epoch). */
  readonly startMs: number;
  /** When it ends (exclusive). */
  readonly endMs: number;
}

/** The window of `s` in force at `nowMs`, or `undefined`. `[start, start + duration)`: the end instant is outside. */
export function scheduleInForce(s: ScalingSchedule, nowMs: number): ActiveSchedule | undefined {
  const startMs = lastCronStartMs(s.cron, s.timezone, nowMs);
  if (startMs === undefined) return undefined;
  const endMs = startMs + parseDurationString(s.duration);
  if (nowMs >= endMs) return undefined;
  return { name: s.name, cron: s.cron, timezone: s.timezone, min: s.min, idle: s.idle, startMs, endMs };
}

/** The effective floor of a scaling group at `nowMs`: `min` and `idle` raised by every window in force. */
export interface EffectiveFloor {
  /** `scaling.min` raised by the windows in force, never above `max`. */
  readonly min: number;
  /** `scaling.idle` raised by the windows in force. */
  readonly idle: number;
  readonly active: readonly ActiveSchedule[];
  /** The window that set `min` (the first with the highest min above `scaling.min`), if any. */
  readonly minFrom: string | undefined;
}

/** The floor of `scaling` at `nowMs`. */
export function effectiveFloor(scaling: ScalingPolicy, nowMs: number): EffectiveFloor {
  const active = scaling.schedules.map((s) => scheduleInForce(s, nowMs)).filter((a): a is ActiveSchedule => a !== undefined);
  let min = scaling.min;
  let idle = scaling.idle;
  let minFrom: string | undefined;
  for (const a of active) {
    if (a.min > min) {
      min = a.min;
      minFrom = a.name;
    }
    if (a.idle !== undefined && a.idle > idle) idle = a.idle;
  }
  return { min: Math.min(min, scaling.max), idle, active, minFrom };
}
