/**
 * Defaults and bounds of the apply engine and the drain protocol. Drain timing defaults come from the policy
 * (`coordinator.drain`); these are the engine's own.
 */

/** Poll interval of `verify-online` / `verify-gone`. */
export const DEFAULT_VERIFY_POLL_MS = 1_000;
/** A host inventory older than this (by the coordinator's receive time) is not used by guards or drains. */
export const DEFAULT_APPLY_INVENTORY_MAX_AGE_MS = 60_000;
/** Drain settle window when the policy gives none. */
export const DEFAULT_DRAIN_SETTLE_MS = 15_000;
/** Drain deadline when the policy gives none. */
export const DEFAULT_DRAIN_DEADLINE_MS = 3_600_000;
/** Drain poll interval when the policy gives none. */
export const DEFAULT_DRAIN_POLL_MS = 5_000;
/** Longest drain deadline an operator may ask for (`--deadline`). */
export const MAX_DRAIN_DEADLINE_MS = 7 * 86_400_000;
/** Longest message kept in an outcome or audit record (GitHub and agent messages are cut to this). */
export const MAX_OUTCOME_MESSAGE_CHARS = 500;
/** How long `apply` waits for a fresh inventory from every opted-in host before planning without it. */
export const DEFAULT_INVENTORY_WAIT_MS = 15_000;
/** JetStream KV bucket of the operation leases (one key per running action, see `operation-leases.ts`). */
export const OPERATIONS_BUCKET = "lk_operations";
/**
 * A running action's lease lives this long without a renewal: after a coordinator is killed, its interrupted
 * actions are resumed or rolled back by any coordinator at most this long later.
 */
export const DEFAULT_OPERATION_LEASE_TTL_MS = 10_000;
/**
 * A cached registration token is reused only while more than this is left of its validity (GitHub's last an hour):
 * the intent carrying it lives at most two minutes, and the agent's `config.sh` must still find it valid.
 */
export const REGISTRATION_TOKEN_SAFETY_MARGIN_MS = 10 * 60_000;
/**
 * Reads of one scope's runner listing by the steps and guards of actions running side by side wait this long and
 * then share one request (see `scope-listings.ts`).
 */
export const LISTING_BATCH_MS = 250;
