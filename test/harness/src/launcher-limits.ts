/**
 * Every timeout and size the launchers use, in one place. Timeouts are generous because a 2-core machine
 * running a whole suite can be slow; every wait is a poll that returns as soon as the condition holds, so
 * a generous limit costs nothing when things go well.
 */

/** First poll interval of `waitUntil`. */
export const POLL_INTERVAL_MIN_MS = 20;
/** Largest poll interval of `waitUntil`. */
export const POLL_INTERVAL_MAX_MS = 250;
/** Output kept from one command run by `runCommand`. */
export const COMMAND_OUTPUT_CAP_BYTES = 4 * 1024 * 1024;

/** nats-server: until it accepts a client connection. */
export const NATS_START_TIMEOUT_MS = 30_000;
/** nats-server: SIGTERM to exit (JetStream flushes its store), before SIGKILL. */
export const NATS_STOP_GRACE_MS = 15_000;

/**
 * Largest message an agent may publish (inventory, result, audit), set as the agents' account limit: shared's
 * `AGENT_NATS_MAX_PAYLOAD_BYTES`, the one definition of this wire limit.
 */
export { AGENT_NATS_MAX_PAYLOAD_BYTES as AGENT_MAX_PAYLOAD_BYTES } from "@lanekeeper/shared";
/** Server-wide max_payload, which bounds the coordinator's intents and JetStream writes. */
export const SERVER_MAX_PAYLOAD_BYTES = 1024 * 1024;
/**
 * How long an agent may take to reply to an intent: the agent's one-reply permission and the service
 * import's response mapping both expire after this.
 */
export const AGENT_REPLY_WINDOW = "5m";

/** systemd sandbox: until `systemctl is-system-running` answers running/degraded. */
export const SYSTEMD_BOOT_TIMEOUT_MS = 60_000;
/** systemd sandbox: until the namespace is gone after SIGKILL of its PID 1. */
export const SYSTEMD_STOP_TIMEOUT_MS = 30_000;
/** systemd sandbox: one `nsenter … systemctl` call. */
export const SYSTEMD_COMMAND_TIMEOUT_MS = 60_000;

/** podman service: until GET /_ping answers OK. */
export const PODMAN_START_TIMEOUT_MS = 60_000;
/** podman service: SIGTERM to exit before SIGKILL. */
export const PODMAN_STOP_GRACE_MS = 15_000;
