/**
 * Injected faults (`POST /_emulator/faults`): latency, 5xx errors, a lagging `busy` flag, a shorter
 * offline timeout, and primary or secondary rate-limit exhaustion. They apply to the REST API under
 * `/api/v3` only (except `offlineAfterMs`, which the runner sessions use).
 */
import { HttpError } from "./errors.js";

/** Rate-limit faults. */
export interface RateLimitFault {
  /** Requests left in every token's current window; 0 makes the next request fail (primary limit). */
  remaining?: number;
  /** Move `x-ratelimit-reset` this far into the future with `remaining`. @default unchanged */
  resetAfterMs?: number;
  /** Refuse every request with GitHub's secondary-limit response while set. @default false */
  secondary?: boolean;
  /** Status of rate-limit refusals; GitHub uses both. @default 403 */
  status?: 403 | 429;
  /** `retry-after` seconds sent with secondary-limit refusals. @default 60 */
  retryAfterS?: number;
}

/** The fault set; every field is optional and absent means "no fault". */
export interface Faults {
  /** Delay before every REST response, ms. */
  latencyMs?: number;
  /** Probability (0..1) that a REST request fails with `errorStatus` and spends nothing. */
  errorRate?: number;
  /** Status of injected errors. @default 502 */
  errorStatus?: number;
  /** REST reads show `busy: false` for this long after a job is handed to a runner, ms (overrides realism's `busyStartLagMs`). */
  busyLagMs?: number;
  /** Overrides `--offline-after-ms` while set. */
  offlineAfterMs?: number;
  /** Rate-limit exhaustion. */
  rateLimit?: RateLimitFault;
  /**
   * Runners cannot connect: every session request of the runner protocol is answered 503, so registered runners
   * stay offline (the runner retries, as the real one does when the service is unreachable).
   */
  refuseSessions?: boolean;
}

function bad(path: string, message: string): never {
  throw new HttpError(400, { message: `${path}: ${message}` });
}

function num(path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) bad(path, `must be a number in [${min}, ${max}]`);
  return v;
}

/** Validates a `POST /_emulator/faults` body; unknown keys are rejected with `path: message`. */
export function parseFaults(body: unknown): Faults {
  if (typeof body !== "object" || body === null || Array.isArray(body)) bad("faults", "must be an object");
  const known = ["latencyMs", "errorRate", "errorStatus", "busyLagMs", "offlineAfterMs", "rateLimit", "refuseSessions"];
  for (const k of Object.keys(body)) if (!known.includes(k)) bad(k, "unknown fault");
  const b = body as Record<string, unknown>;
  const faults: Faults = {};
  const set = <K extends keyof Faults>(k: K, v: Faults[K] | undefined): void => {
    if (v !== undefined) faults[k] = v;
  };
  set("latencyMs", num("latencyMs", b.latencyMs, 0, 600_000));
  set("errorRate", num("errorRate", b.errorRate, 0, 1));
  set("errorStatus", num("errorStatus", b.errorStatus, 500, 599));
  set("busyLagMs", num("busyLagMs", b.busyLagMs, 0));
  set("offlineAfterMs", num("offlineAfterMs", b.offlineAfterMs, 1));
  if (b.refuseSessions !== undefined) {
    if (typeof b.refuseSessions !== "boolean") bad("refuseSessions", "must be a boolean");
    faults.refuseSessions = b.refuseSessions;
  }
  if (b.rateLimit !== undefined) {
    const r = b.rateLimit;
    if (typeof r !== "object" || r === null || Array.isArray(r)) bad("rateLimit", "must be an object");
    for (const k of Object.keys(r)) {
      if (!["remaining", "resetAfterMs", "secondary", "status", "retryAfterS"].includes(k)) bad(`rateLimit.${k}`, "unknown key");
    }
    const rr = r as Record<string, unknown>;
    const fault: RateLimitFault = {};
    const remaining = num("rateLimit.remaining", rr.remaining, 0);
    if (remaining !== undefined) fault.remaining = Math.floor(remaining);
    const resetAfterMs = num("rateLimit.resetAfterMs", rr.resetAfterMs, 0);
    if (resetAfterMs !== undefined) fault.resetAfterMs = resetAfterMs;
    if (rr.secondary !== undefined) {
      if (typeof rr.secondary !== "boolean") bad("rateLimit.secondary", "must be a boolean");
      fault.secondary = rr.secondary;
    }
    if (rr.status !== undefined) {
      if (rr.status !== 403 && rr.status !== 429) bad("rateLimit.status", "must be 403 or 429");
      fault.status = rr.status;
    }
    const retryAfterS = num("rateLimit.retryAfterS", rr.retryAfterS, 0);
    if (retryAfterS !== undefined) fault.retryAfterS = Math.floor(retryAfterS);
    faults.rateLimit = fault;
  }
  return faults;
}

/** The faults in force. */
export class FaultState {
  private current: Faults = {};

  /** A copy of the faults in force. */
  get(): Faults {
    return structuredClone(this.current);
  }

  /** Merges `patch` into the faults in force (top-level keys replace). */
  set(patch: Faults): Faults {
    this.current = { ...this.current, ...patch };
    return this.get();
  }

  /** Removes every fault. */
  clear(): void {
    this.current = {};
  }

  /** True when this request should fail with an injected 5xx. */
  rollError(): boolean {
    const rate = this.current.errorRate ?? 0;
    return rate > 0 && Math.random() < rate;
  }

  /** The injected 5xx status. */
  errorStatus(): number {
    return this.current.errorStatus ?? 502;
  }

  /** Injected latency, ms. */
  latencyMs(): number {
    return this.current.latencyMs ?? 0;
  }

  /** Busy lag override, ms, if set (it replaces realism's `busyStartLagMs`). */
  busyLagMs(): number | undefined {
    return this.current.busyLagMs;
  }

  /** Offline timeout override, if any. */
  offlineAfterMs(): number | undefined {
    return this.current.offlineAfterMs;
  }

  /** True while runners cannot open sessions. */
  refuseSessions(): boolean {
    return this.current.refuseSessions === true;
  }

  /** Rate-limit fault, if any. */
  rateLimit(): RateLimitFault | undefined {
    return this.current.rateLimit;
  }
}
