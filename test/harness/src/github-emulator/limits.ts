/**
 * Every number the GitHub emulator enforces or defaults to, in one place. Values marked "GitHub" come from
 * `shared/reference/github-runner-contract.md`; the rest are emulator choices sized for fast tests.
 */

/** GitHub: registration and remove tokens expire one hour after creation. */
export const RUNNER_TOKEN_TTL_MS = 60 * 60 * 1000;

/** GitHub: `per_page` default. */
export const DEFAULT_PER_PAGE = 30;

/** GitHub: `per_page` maximum; larger values are clamped, as GitHub does. */
export const MAX_PER_PAGE = 100;

/** GitHub: primary rate limit of a personal access token, requests per hour. */
export const DEFAULT_RATE_LIMIT_PER_HOUR = 5000;

/** GitHub: unauthenticated requests per hour (per client address). */
export const ANONYMOUS_RATE_LIMIT_PER_HOUR = 60;

/** GitHub: the primary rate-limit window. */
export const RATE_LIMIT_WINDOW_MS = 60 * 60 * 1000;

/** Emulator default for `retry-after` on an injected secondary rate limit, in seconds. */
export const DEFAULT_SECONDARY_RETRY_AFTER_S = 60;

/** GitHub: labels per add/set request (`maxItems` in the spec). */
export const MAX_LABELS_PER_REQUEST = 100;

/** Emulator (runner protocol default): a session without a poll for this long goes offline. */
export const DEFAULT_OFFLINE_AFTER_MS = 3000;

/** Emulator (runner protocol): default long-poll wait when `wait_ms` is absent. */
export const DEFAULT_POLL_WAIT_MS = 5000;

/** Emulator: longest long poll served; GitHub's own polls last 50 s. */
export const MAX_POLL_WAIT_MS = 50_000;

/** Emulator: longest server-side wait of `GET /_emulator/jobs/{id}?wait_status=`. */
export const MAX_CONTROL_WAIT_MS = 120_000;

/** Emulator: largest request body accepted, in bytes. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

/** GitHub: an offline self-hosted runner is deleted after 14 days without connecting. */
export const IDLE_RUNNER_DELETION_MS = 14 * 24 * 60 * 60 * 1000;

/** GitHub: an offline ephemeral runner is deleted after 1 day without connecting. */
export const IDLE_EPHEMERAL_RUNNER_DELETION_MS = 24 * 60 * 60 * 1000;

/** Emulator: how long one webhook delivery may take before it counts as failed. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** Emulator: webhook deliveries remembered for `GET /_emulator/webhook/deliveries`. */
export const MAX_REMEMBERED_DELIVERIES = 1000;

/** Emulator: delay that coalesces state-file writes. */
export const STATE_SAVE_DELAY_MS = 20;

/** The runner version the emulator advertises in `downloads`. */
export const ADVERTISED_RUNNER_VERSION = "2.336.0";

/** Most jobs one trace (`POST /_emulator/traces`) may hold. */
export const MAX_TRACE_JOBS = 10_000;

/**
 * Up to this many registrations and sessions, every request sweeps first (expiry exact to the request, as every
 * test expects); above it (a fleet simulation), a request sweeps only when the last sweep is
 * {@link SWEEP_MIN_INTERVAL_MS} old, because a sweep visits every session and registration.
 */
export const SWEEP_EVERY_REQUEST_MAX = 2_000;
/** See {@link SWEEP_EVERY_REQUEST_MAX}. */
export const SWEEP_MIN_INTERVAL_MS = 250;
