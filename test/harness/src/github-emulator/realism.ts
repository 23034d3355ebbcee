/**
 * How far the emulator departs from an ideal GitHub toward the one operators meet: the REST `busy` flag lags the
 * job (GitHub updates it from the runner's job messages a few seconds late, both when a job starts and when it
 * ends), a runner whose process vanished without deregistering stays `online` for a while, and webhook deliveries
 * are not guaranteed (some never arrive, some arrive late and out of order). Off (all zero) in a bare
 * `startGitHubEmulator`; the harness fleet turns it on by default ({@link FLEET_REALISM}).
 *
 * Webhook fates come from a seeded generator, so a run with the same seed and the same sequence of deliveries
 * drops and delays the same ones.
 */
import { GitHubEmulatorError } from "./errors.js";

/** Realism settings; every field is optional and absent means the fault-free value (0). */
export interface RealismOptions {
  /** REST reads show `busy: false` for this long after a job is handed to a runner, ms. @default 0 */
  busyStartLagMs?: number;
  /** REST reads still show `busy: true` for this long after the runner's job ended, ms. @default 0 */
  busyEndLagMs?: number;
  /**
   * A runner whose session died without a goodbye (killed process, lost network) stays `online` in REST reads for
   * this long after the emulator closed the session (which itself happens `offlineAfterMs` after the last poll), ms.
   * @default 0
   */
  onlineLagMs?: number;
  /** Share (0..1) of webhook deliveries never sent. @default 0 */
  webhookDropRate?: number;
  /** Share (0..1) of the remaining deliveries sent late (after later ones). @default 0 */
  webhookDelayRate?: number;
  /** A delayed delivery waits a uniformly random time between half of this and this, ms. @default 0 */
  webhookDelayMaxMs?: number;
  /** Seed of the generator that picks dropped and delayed deliveries. @default 1 */
  seed?: number;
}

/** Realism after defaults and checks; frozen. */
export type ResolvedRealism = Readonly<Required<RealismOptions>>;

/** The fault-free settings. */
export const NO_REALISM: ResolvedRealism = Object.freeze({
  busyStartLagMs: 0,
  busyEndLagMs: 0,
  onlineLagMs: 0,
  webhookDropRate: 0,
  webhookDelayRate: 0,
  webhookDelayMaxMs: 0,
  seed: 1,
});

/**
 * What the harness fleet (e2e suites, demo, benchmarks) runs with unless told otherwise: a few seconds of `busy`
 * lag each way, a killed runner online for 10 s more, 5% of webhooks lost and 10% sent 1.5 to 3 s late.
 */
export const FLEET_REALISM: ResolvedRealism = Object.freeze({
  busyStartLagMs: 2000,
  busyEndLagMs: 2000,
  onlineLagMs: 10_000,
  webhookDropRate: 0.05,
  webhookDelayRate: 0.1,
  webhookDelayMaxMs: 3000,
  seed: 1,
});

const KEYS: readonly (keyof RealismOptions)[] = Object.keys(NO_REALISM) as (keyof RealismOptions)[];

function fail(path: string, message: string): never {
  throw new GitHubEmulatorError("OPTIONS_INVALID", `${path}: ${message}`);
}

/**
 * Applies defaults over `base` and validates: `true` is {@link FLEET_REALISM}, `false`/undefined is
 * {@link NO_REALISM}, an object overrides `base` field by field. Throws `OPTIONS_INVALID` with `path: message`.
 */
export function resolveRealism(value: RealismOptions | boolean | undefined, base: ResolvedRealism = NO_REALISM, path = "realism"): ResolvedRealism {
  if (value === undefined || value === false) return value === false ? NO_REALISM : base;
  if (value === true) return FLEET_REALISM;
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(path, "must be an object or a boolean");
  for (const k of Object.keys(value)) if (!KEYS.includes(k as keyof RealismOptions)) fail(`${path}.${k}`, "unknown key");
  const out: Record<string, number> = { ...base };
  for (const k of KEYS) {
    const v = value[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`${path}.${k}`, `must be a non-negative number, got ${String(v)}`);
    if (k.endsWith("Rate") && v > 1) fail(`${path}.${k}`, `must be at most 1, got ${v}`);
    if (k.endsWith("Ms") && v > 3_600_000) fail(`${path}.${k}`, `must be at most 3600000 (an hour), got ${v}`);
    if (k === "seed" && !Number.isInteger(v)) fail(`${path}.${k}`, `must be an integer, got ${v}`);
    out[k] = v;
  }
  return Object.freeze(out) as ResolvedRealism;
}

/**
 * Parses a realism setting as the CLI flag `--realism` and the `LK_EMULATOR_REALISM` variable take it: `on`
 * (or `1`, `true`, empty) is {@link FLEET_REALISM}, `off` (or `0`, `false`) is fault-free, and a JSON object
 * overrides {@link FLEET_REALISM} field by field (`{"webhookDropRate":0.2}`). Throws `OPTIONS_INVALID`.
 */
export function parseRealismSetting(raw: string, path: string): ResolvedRealism {
  const v = raw.trim();
  if (v === "" || v === "on" || v === "1" || v === "true") return FLEET_REALISM;
  if (v === "off" || v === "0" || v === "false") return NO_REALISM;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    fail(path, `expected on, off or a JSON object, got ${JSON.stringify(v)}`);
  }
  return resolveRealism(parsed as RealismOptions, FLEET_REALISM, path);
}

/**
 * Realism for the harness fleet from `LK_EMULATOR_REALISM` ({@link parseRealismSetting}); unset is
 * {@link FLEET_REALISM}, so e2e suites, the demo and the benchmarks meet GitHub's imperfections by default.
 */
export function realismFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): ResolvedRealism {
  const raw = env.LK_EMULATOR_REALISM;
  return raw === undefined ? FLEET_REALISM : parseRealismSetting(raw, "LK_EMULATOR_REALISM");
}

/** A small seeded generator (mulberry32): uniform numbers in [0, 1), the same sequence for the same seed. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
