import { InvalidArgumentError } from "commander";

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a duration option: `1500ms`, `30s`, `10m`, `2h`, `1d`, combinations like `1h30m`, or a bare number of
 * milliseconds. For commander (`.option(..., parseDuration)`): a bad value is a usage error.
 */
export function parseDuration(v: string): number {
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (UNITS[m[2] ?? "ms"] ?? 1);
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length || !Number.isSafeInteger(total)) {
    throw new InvalidArgumentError("must be a duration such as 90s, 10m, 2h or 1h30m");
  }
  return total;
}

/** A duration for humans: `850ms`, `12s`, `4m05s`, `2h03m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
