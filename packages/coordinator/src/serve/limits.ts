/** Defaults of `lanekeeper serve`: the reconcile loop, the leader lock and health-driven restarts. */

/** JetStream KV bucket of the leader lock. */
export const LEADER_BUCKET = "lk_leader";
/** The key every coordinator competes for. */
export const LEADER_KEY = "leader";
/** A leader that has not renewed the lock for this long loses it. */
export const DEFAULT_LEADER_TTL_MS = 15_000;
/** A registration offline on GitHub while its host reports the runner running for this long is restarted. */
export const DEFAULT_OFFLINE_GRACE_MS = 120_000;
/** Health-driven restarts of one lane per window before the lane is left to an operator. */
export const DEFAULT_MAX_HEALTH_RESTARTS = 3;
/** The window of {@link DEFAULT_MAX_HEALTH_RESTARTS}. */
export const DEFAULT_HEALTH_WINDOW_MS = 3_600_000;
/** Health-driven restarts started in one reconcile cycle (the rest wait for the next). */
export const MAX_HEALTH_RESTARTS_PER_CYCLE = 2;
/** Least time between the end of a reconcile cycle and a cycle a poke (webhook, runner exit) asked for. */
export const DEFAULT_POKE_GAP_MS = 1000;
/** Quiet time after the last change event of the policy file before `serve` reloads it. */
export const DEFAULT_POLICY_RELOAD_DEBOUNCE_MS = 300;
