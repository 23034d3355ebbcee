/**
 * Local tunables of the agent's lane operations, health loop and status socket. Protocol limits (envelope size,
 * label counts, gRPC message size, ...) live in `@lanekeeper/shared`'s `limits.ts`; intake tunables in
 * `intake/limits.ts`. Every timeout an agent operation waits on is here.
 */

/** Longest a single `systemctl` call may take before it is killed and reported. */
export const SYSTEMCTL_TIMEOUT_MS = 60_000;
/** Longest `config.sh` (configure or remove) may take. */
export const RUNNER_CONFIG_TIMEOUT_MS = 120_000;
/** Longest one Docker Engine API call may take (except waits that are bounded separately). */
export const ENGINE_CALL_TIMEOUT_MS = 60_000;
/** Seconds a container gets between SIGTERM and SIGKILL on stop (the runner waits up to 30 s for a job). */
export const CONTAINER_STOP_GRACE_S = 35;
/** `TimeoutStopSec=` of lane units: longer than the runner's own 30 s job-cancel window. */
export const UNIT_STOP_TIMEOUT_S = 45;
/** Longest the agent waits for a container lane to finish configuring (`.runner` present) after start. */
export const CONTAINER_CONFIGURE_TIMEOUT_MS = 120_000;
/** How often a container is polled while waiting for configure or remove to finish. */
export const CONTAINER_POLL_MS = 250;

/** How often capabilities (`systeminformation`) are refreshed: they change rarely and cost a few ms. */
export const CAPABILITIES_REFRESH_MS = 300_000;
/** Bytes of a runner's console read back to classify why it stopped. */
export const CONSOLE_TAIL_BYTES = 16 * 1024;

/** Largest `lane.json`, lane state, journal or hold file read back. */
export const MAX_STATE_FILE_BYTES = 256 * 1024;
/** Largest unit file parsed (ours are about 2 KiB). */
export const MAX_UNIT_FILE_BYTES = 64 * 1024;
/** Largest `.runner` file parsed. */
export const MAX_RUNNER_FILE_BYTES = 64 * 1024;
/** Largest registration token or JIT config accepted by {@link LaneManager} (JIT configs are a few KiB). */
export const MAX_SECRET_BYTES = 16 * 1024;
/** Longest hold reason kept. */
export const MAX_HOLD_REASON_CHARS = 512;
/** Largest stdout/stderr kept from a child process (only for error classification; never logged raw). */
export const MAX_CHILD_OUTPUT_BYTES = 256 * 1024;

/** Deadline of a `lanekeeper-agent status` call on the socket. */
export const STATUS_CALL_DEADLINE_MS = 5_000;
/** Audit records `lanekeeper-agent status` asks for by default. */
export const STATUS_DEFAULT_AUDIT_TAIL = 10;
/** Unmanaged `.runner` directories are searched this deep under each configured runner root. */
export const RUNNER_ROOT_SCAN_DEPTH = 3;
