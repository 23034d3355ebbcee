/**
 * Coordinator limits and defaults, in one place. Protocol limits shared with the agent live in
 * `@lanekeeper/shared`'s `limits.ts`; these only bound the coordinator's own work.
 */

/** Runners per page when listing (GitHub's maximum is 100). */
export const GITHUB_PER_PAGE = 100;
/** Most pages read for one scope's runner list (10,000 runners); more is treated as an error, not truncated. */
export const MAX_RUNNER_PAGES = 100;
/** Most URLs remembered by the ETag cache (one per page of each scope's listing). */
export const MAX_ETAG_CACHE_ENTRIES = 20_000;
/** Requests kept back for removals when the rate limit runs low. */
export const DEFAULT_RATE_LIMIT_RESERVE = 200;
/** Retries of a 5xx or network failure (idempotent calls only). */
export const DEFAULT_GITHUB_RETRIES = 3;
/** Retries after a primary or secondary rate limit, per request. */
export const DEFAULT_RATE_LIMIT_RETRIES = 2;
/** A rate-limit retry that would wait longer than this is given up (the next reconcile tries again). */
export const DEFAULT_MAX_RETRY_WAIT_SECONDS = 120;
/** Scale of `retry-after` seconds and of the retry plugin's backoff, in ms per unit. */
export const DEFAULT_RETRY_BASE_MS = 1000;
/** Secondary-limit wait when GitHub sends no `retry-after`. */
export const DEFAULT_SECONDARY_RETRY_AFTER_SECONDS = 60;
/**
 * How long one attempt of a GitHub request may go without an answer before it is aborted (a server that
 * accepts the connection and never answers must not hold a command; GitHub itself answers within 10 s).
 */
export const DEFAULT_GITHUB_REQUEST_TIMEOUT_MS = 15_000;
/**
 * Attempts of a request that got no HTTP answer (refused, DNS, TLS, timeout, reset): one retry covers a blip;
 * more would only make every command wait out the backoff while GitHub is unreachable.
 */
export const GITHUB_CONNECTION_ATTEMPTS = 2;
/**
 * How long one answer of GitHub's runner downloads listing is used before it is read again (for every scope: the
 * listing is GitHub's, not the scope's). A new runner release is noticed this much later at most.
 */
export const DEFAULT_RUNNER_DOWNLOADS_TTL_MS = 10 * 60_000;
/** Longest GitHub error message kept in an error's details. */
export const MAX_GITHUB_MESSAGE_CHARS = 300;

/** Lane removals (scale-down and moves) one plan may contain. */
export const DEFAULT_MAX_REMOVALS_PER_PLAN = 2;
/** Job ids one piece of scaling evidence lists (the counts beside them stay exact). */
export const MAX_EVIDENCE_JOB_IDS = 50;
/** Orphan cleanups one plan may contain. */
export const DEFAULT_MAX_ORPHAN_CLEANUPS_PER_PLAN = 5;
/** Lane creations one plan may contain. */
export const DEFAULT_MAX_CREATES_PER_PLAN = 50;
/** An orphan must stay marked at least this long before it is cleaned up. */
export const DEFAULT_ORPHAN_GRACE_MS = 5 * 60_000;
/** A lane still `creating` after this long is reported as needing attention. */
export const DEFAULT_CREATE_TIMEOUT_MS = 15 * 60_000;
/** A registration that has not shown up on GitHub this long after the lane was created is an orphan candidate. */
export const DEFAULT_REGISTRATION_GRACE_MS = 5 * 60_000;
/** Host inventories older than this are treated as unknown. */
export const DEFAULT_INVENTORY_MAX_AGE_MS = 60_000;
/** Most attempts at finding a free lane id for one new lane. */
export const MAX_LANE_ID_ATTEMPTS = 1000;

/** A failed create's record is forgotten only on an inventory received at least this long after the failure. */
export const FAILED_CREATE_SETTLE_MS = 2_000;

/**
 * How long opening the coordinator retries NATS (connect, JetStream, every bucket) through a node loss or a
 * cluster restart before it fails with NATS_UNAVAILABLE. A node's death leaves JetStream requests unanswered for
 * about 10 s while its streams elect new leaders. CLI commands bound it further by their `--timeout`.
 */
export const DEFAULT_NATS_OPEN_WAIT_MS = 45_000;
/** First pause between attempts while opening NATS; it doubles up to {@link NATS_OPEN_BACKOFF_MAX_MS}. */
export const NATS_OPEN_BACKOFF_MIN_MS = 250;
/** Longest pause between attempts while opening NATS. */
export const NATS_OPEN_BACKOFF_MAX_MS = 4_000;
/**
 * How long a JetStream request that is safe to repeat is retried while JetStream does not answer (503, timeout)
 * in the middle of an action: the read of the fence before every lane-record write and every intent, and the
 * allocation of an intent's sequence. A stream electing a new leader after its node died takes up to about 10 s; an
 * action waits that out instead of failing in a safe state with a recovery note for a transient blip.
 */
export const JETSTREAM_RETRY_MS = 15_000;
/** How long `lanekeeper cluster replicas` retries NATS (a node just lost, its streams electing new leaders). */
export const CLUSTER_COMMAND_NATS_WAIT_MS = 30_000;
/** How long `lanekeeper plan` retries NATS before it plans from GitHub alone (DEGRADED). */
export const PLAN_NATS_WAIT_MS = 3_000;
/** JetStream KV bucket of the create budget shared by every coordinator (`lane-store-kv/kv-create-budget.ts`). */
export const CREATE_BUDGET_BUCKET = "lk_github_budget";
/** Compare-and-set attempts of one take of the create budget before it is refused for this cycle. */
export const CREATE_BUDGET_CAS_ATTEMPTS = 20;
/** Host inventories an observation reads at the same time (each one KV read). */
export const INVENTORY_READ_CONCURRENCY = 16;
