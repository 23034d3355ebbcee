/**
 * Time arithmetic of `scaling` policies: duration strings (`90s`, `5m`, `1h30m`), 5-field cron window starts and
 * IANA time zones. Pure (croner evaluates cron in a time zone with `Intl`, no clock is read here: callers pass
 * the instant).
 */
import { Cron } from "croner";
import { LanekeeperError } from "./errors.js";

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The pattern duration strings must match (published in the JSON Schema). */
export const DURATION_PATTERN = "^(\\d+(ms|s|m|h|d))+$";

/**
 * Milliseconds of a duration string: one or more `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`
 * (`90s`, `5m`, `1h30m`). Throws `CONFIG_INVALID` otherwise.
 */
export function parseDurationString(s: string): number {
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (UNITS[m[2] ?? "ms"] ?? 1);
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length || !Number.isSafeInteger(total)) {
    throw new LanekeeperError("CONFIG_INVALID", "must be a duration such as 90s, 5m, 10h or 1h30m");
  }
  return total;
}

/** Throws `CONFIG_INVALID` unless `tz` is an IANA time zone this runtime knows (e.g. `Europe/Berlin`, `UTC`). */
export function validateTimeZone(tz: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new LanekeeperError("CONFIG_INVALID", `unknown time zone "${tz}"; use an IANA name such as Europe/Berlin or UTC`);
  }
}

function cronOf(cron: string, timezone: string): Cron {
  // croner also takes 6- and 7-field patterns (seconds, years); the policy documents classic 5-field cron only.
  if (cron.trim().split(/\s+/).length !== 5) {
    throw new LanekeeperError("CONFIG_INVALID", "must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. \"0 8 * * 1-5\"");
  }
  try {
    return new Cron(cron, { timezone, paused: true });
  } catch (err) {
    throw new LanekeeperError("CONFIG_INVALID", `is not a valid cron expression: ${(err as Error).message}`);
  }
}

/** Throws `CONFIG_INVALID` unless `cron` is a 5-field cron expression that fires at least once. */
export function validateCron(cron: string, timezone = "UTC"): void {
  const c = cronOf(cron, timezone);
  if (c.nextRun(new Date(0)) === null) throw new LanekeeperError("CONFIG_INVALID", "never fires");
}

/**
 * The latest instant at or before `nowMs` at which `cron` fires in `timezone` (ms since the epoch), or
 * `undefined` when it never fired before. A window `[start, start + duration)` is in force when `start` is this
 * instant and `nowMs < start + duration`: a later start always ends later, so the latest start is the only one
 * to check.
 */
export function lastCronStartMs(cron: string, timezone: string, nowMs: number): number | undefined {
  // previousRuns excludes the reference instant and strips milliseconds: +1 s makes "at or before now" inclusive.
  const [prev] = cronOf(cron, timezone).previousRuns(1, new Date(nowMs + 1000));
  if (prev === undefined) return undefined;
  const t = prev.getTime();
  return t <= nowMs ? t : undefined;
}

/**
 * The first instant strictly after `afterMs` at which `cron` fires in `timezone` (ms since the epoch), or
 * `undefined` when it never fires again. With {@link lastCronStartMs} this says when a closed window opens next.
 */
export function nextCronStartMs(cron: string, timezone: string, afterMs: number): number | undefined {
  const next = cronOf(cron, timezone).nextRun(new Date(afterMs));
  return next === null ? undefined : next.getTime();
}

/** A recurring window: from each time `cron` fires in `timezone`, for `duration` (elapsed time). */
export interface CronWindow {
  readonly cron: string;
  readonly duration: string;
  readonly timezone: string;
}

/** Where `nowMs` stands against a {@link CronWindow}: inside the start in force, or outside until the next start. */
export type CronWindowState =
  | { readonly open: true; readonly startMs: number; readonly endMs: number }
  | { readonly open: false; readonly opensAtMs: number | undefined };

/**
 * Whether `w` is open at `nowMs`: `[start, start + duration)` for the latest start at or before `nowMs` (the end
 * instant is outside); when closed, the next start after `nowMs`. Pure: the caller passes the instant.
 */
export function cronWindowAt(w: CronWindow, nowMs: number): CronWindowState {
  const startMs = lastCronStartMs(w.cron, w.timezone, nowMs);
  if (startMs !== undefined) {
    const endMs = startMs + parseDurationString(w.duration);
    if (nowMs < endMs) return { open: true, startMs, endMs };
  }
  return { open: false, opensAtMs: nextCronStartMs(w.cron, w.timezone, nowMs) };
}

/**
 * An instant as an operator of `timezone` reads it, with the UTC instant for logs:
 * `2026-12-05 22:00 Europe/Berlin (2026-12-05T21:00:00Z)`.
 */
export function formatInTimeZone(ms: number, timezone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(ms));
  const p = (t: Intl.DateTimeFormatPartTypes): string => parts.find((x) => x.type === t)?.value ?? "";
  const utc = new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  return `${p("year")}-${p("month")}-${p("day")} ${p("hour")}:${p("minute")} ${timezone} (${utc})`;
}
