/**
 * Tunables of the coordinator's intent dispatch, inventory collection and sequence allocation. Protocol limits
 * (TTL, skew, envelope size) live in `@lanekeeper/shared`'s `limits.ts`.
 */

/** JetStream KV bucket holding the per-host intent sequence (the upper end of the last leased block). */
export const SEQUENCES_BUCKET = "lk_sequences";
/** JetStream KV bucket holding each host's last verified signed inventory envelope. */
export const INVENTORY_BUCKET = "lk_inventory";
/** Compare-and-set attempts before a sequence allocation gives up (another coordinator keeps winning). */
export const MAX_SEQUENCE_CAS_ATTEMPTS = 50;
/**
 * Sequences leased per compare-and-set. 1 = one KV round trip per intent. A bigger block trades KV round trips
 * for gaps after a coordinator restart (gaps are allowed by the agent).
 */
export const DEFAULT_SEQUENCE_BLOCK = 1;
/**
 * Most intents to one host sent as one batch (one fencing check, one sequence allocation, one synchronous
 * build-sign-publish loop); bounds how long one batch holds the event loop.
 */
export const MAX_SEND_BATCH = 64;
/** `not_before = now − slack`, so an agent whose clock is slightly behind does not see the intent as early. */
export const DEFAULT_NOT_BEFORE_SLACK_MS = 5_000;
/** How long the dispatcher waits for an agent's signed reply before the attempt counts as timed out. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Attempts (the first plus re-issues) for an action whose re-issue is safe. */
export const DEFAULT_DISPATCH_ATTEMPTS = 3;
/** Completed intent ids remembered to refuse a duplicate result. */
export const MAX_COMPLETED_INTENTS = 65_536;
/** An inventory snapshot older than this (by its signed `taken_at`) is refused as stale. */
export const MAX_INVENTORY_AGE_MS = 120_000;
/** How long the dispatcher keeps re-issuing while an agent answers BEFORE_FLOOR (skew 30 s + slack + margin). */
export const DEFAULT_BEFORE_FLOOR_WAIT_MS = 45_000;
/** Pause between re-issues while an agent answers BEFORE_FLOOR. */
export const DEFAULT_BEFORE_FLOOR_RETRY_MS = 2_000;
