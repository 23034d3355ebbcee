/** The validity-window check of signed, expiring messages, against one reading of an injected clock. */
import { RejectError, RejectReason } from "./errors.js";
import { CLOCK_SKEW_MS, MAX_INTENT_TTL_MS } from "./limits.js";

/** The times an intent carries, in milliseconds since the epoch. */
export interface TimeWindow {
  issuedAtMs: number;
  notBeforeMs: number;
  expiresAtMs: number;
}

/** Tolerances of {@link checkTimeWindow}. */
export interface TimeWindowOptions {
  /**
   * Tolerated clock difference, applied on both ends.
   * @default CLOCK_SKEW_MS (30 s)
   */
  skewMs?: number;
  /**
   * Longest allowed `expiresAtMs − issuedAtMs`.
   * @default MAX_INTENT_TTL_MS (120 s)
   */
  maxTtlMs?: number;
}

/**
 * Throw unless `notBefore − skew ≤ now ≤ expires + skew`, `expires − issued ≤ maxTtl`, and the window is well
 * formed (`issued ≤ notBefore ≤ expires`, all positive). Shape problems are checked before `now`, so a malformed
 * window is reported as such whatever the time.
 */
export function checkTimeWindow(t: TimeWindow, nowMs: number, opts: TimeWindowOptions = {}): void {
  const skew = opts.skewMs ?? CLOCK_SKEW_MS;
  const maxTtl = opts.maxTtlMs ?? MAX_INTENT_TTL_MS;
  const { issuedAtMs, notBeforeMs, expiresAtMs } = t;
  const details = { issuedAtMs, notBeforeMs, expiresAtMs, nowMs, skewMs: skew };
  if (issuedAtMs <= 0 || notBeforeMs <= 0 || expiresAtMs <= 0) {
    throw new RejectError(RejectReason.BAD_TIME_WINDOW, "issued_at, not_before and expires_at must all be set", { details });
  }
  if (expiresAtMs < notBeforeMs) {
    throw new RejectError(RejectReason.BAD_TIME_WINDOW, "expires_at is before not_before", { details });
  }
  if (notBeforeMs < issuedAtMs) {
    // Otherwise a short TTL could hide a validity window reaching far into the past.
    throw new RejectError(RejectReason.BAD_TIME_WINDOW, "not_before is before issued_at", { details });
  }
  if (expiresAtMs - issuedAtMs > maxTtl) {
    throw new RejectError(
      RejectReason.TTL_TOO_LONG,
      `lifetime ${expiresAtMs - issuedAtMs} ms exceeds the maximum of ${maxTtl} ms`,
      { details },
    );
  }
  if (nowMs < notBeforeMs - skew) {
    throw new RejectError(RejectReason.NOT_YET_VALID, `not valid before ${new Date(notBeforeMs).toISOString()} (skew ${skew} ms)`, {
      details,
    });
  }
  if (nowMs > expiresAtMs + skew) {
    throw new RejectError(RejectReason.EXPIRED, `expired at ${new Date(expiresAtMs).toISOString()} (skew ${skew} ms)`, { details });
  }
}
