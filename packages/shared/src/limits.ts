/**
 * Every size, length, count and time limit of lanekeeper, in one place. Changing one is a protocol or policy
 * decision: both sides read these constants.
 */

/**
 * Largest message an agent may publish: the NATS `max_payload` of the agents' account
 * (`install/nats-server.example.conf`, `limits { max_payload: 131072 }`, and the harness's `renderNatsConfig`).
 * Every envelope an agent sends (results, inventories) must fit under it.
 */
export const AGENT_NATS_MAX_PAYLOAD_BYTES = 128 * 1024;
/** Largest encoded intent envelope: a lane spec and at most a few sealed secrets. Checked before any decoding. */
export const MAX_INTENT_ENVELOPE_BYTES = 64 * 1024;
/** Largest encoded result envelope: one lane observation and a short message. Checked before any decoding. */
export const MAX_RESULT_ENVELOPE_BYTES = 64 * 1024;
/**
 * Largest encoded inventory envelope, checked before any decoding. Sized for {@link MAX_INVENTORY_LANES} lanes of
 * realistic size and kept under {@link AGENT_NATS_MAX_PAYLOAD_BYTES} (8 KiB to spare). The budget: a lane is about
 * 400 bytes encoded (a container lane with a 90-character image reference, nine labels, runner name and id; a
 * systemd lane is smaller), so 256 lanes take 100 KiB; 64 unmanaged runners of about 200 bytes take 12.5 KiB; an
 * allowlist of realistic names (32 entries per list at most) about 4 KiB; host, capabilities and the envelope
 * itself well under 1 KiB. Lanes with long recovery notes are the exception, not the fleet-wide rule.
 */
export const MAX_INVENTORY_ENVELOPE_BYTES = 120 * 1024;
/** The size cap of each envelope kind (`openEnvelope` and `signEnvelope` apply the one of their kind). */
export const MAX_ENVELOPE_BYTES_BY_KIND = Object.freeze({
  intent: MAX_INTENT_ENVELOPE_BYTES,
  result: MAX_RESULT_ENVELOPE_BYTES,
  inventory: MAX_INVENTORY_ENVELOPE_BYTES,
} as const);
/** Longest `key_id` hint (hex SHA-256 is 64 characters). */
export const MAX_KEY_ID_CHARS = 64;
/** Ed25519 signatures are exactly this long. */
export const SIGNATURE_BYTES = 64;
/** Ed25519 and X25519 raw public keys are this long. */
export const RAW_PUBLIC_KEY_BYTES = 32;
/** The only envelope version accepted (no downgrade path). */
export const ENVELOPE_VERSION = 1;
/** The only signed key-set container version accepted. */
export const KEYSET_ENVELOPE_VERSION = 1;
/** Longest allowed `expires − issued_at` of an intent. */
export const MAX_INTENT_TTL_MS = 120_000;
/** Tolerated clock difference between coordinator and agent, on both ends of the validity window. */
export const CLOCK_SKEW_MS = 30_000;
/** Default TTL the coordinator gives an intent. */
export const DEFAULT_INTENT_TTL_MS = 60_000;

/** Intent ids are 128-bit random values in lower-case hex. */
export const INTENT_ID_CHARS = 32;
/** Host ids, lane ids and pool names: `[a-z0-9][a-z0-9-]{0,62}`. */
export const MAX_HOST_ID_CHARS = 63;
/** See {@link MAX_HOST_ID_CHARS}. */
export const MAX_LANE_ID_CHARS = 63;
/** See {@link MAX_HOST_ID_CHARS}. */
export const MAX_POOL_NAME_CHARS = 63;
/** GitHub user and organization logins are at most 39 characters. */
export const MAX_GITHUB_OWNER_CHARS = 39;
/** GitHub repository names are at most 100 characters. */
export const MAX_GITHUB_REPO_CHARS = 100;
/** Runner group names (GitHub allows more; kept conservative). */
export const MAX_RUNNER_GROUP_CHARS = 100;

/** Most labels one runner registers with (canonical `lk-*` labels included). */
export const MAX_LABELS = 32;
/** Longest runner label (conservative with respect to GitHub's limits). */
export const MAX_LABEL_CHARS = 100;
/** Longest systemd unit name (systemd's own limit is 255 plus NUL). */
export const MAX_UNIT_NAME_CHARS = 255;
/** Longest container name. */
export const MAX_CONTAINER_NAME_CHARS = 128;
/** Longest container label key. */
export const MAX_CONTAINER_LABEL_KEY_CHARS = 128;
/** Longest container label value. */
export const MAX_CONTAINER_LABEL_VALUE_CHARS = 1024;
/** Longest runner version string (`2.330.0`). */
export const MAX_RUNNER_VERSION_CHARS = 32;
/**
 * Largest runner release archive an intent may announce (`RunnerDownload.size_bytes`); the agent's own
 * `runnerDownloads.maxArchiveBytes` is the cap it enforces while downloading. A real runner archive is ~200 MB.
 */
export const MAX_RUNNER_ARCHIVE_BYTES = 4 * 1024 * 1024 * 1024;
/** Longest container image reference (`name@sha256:<64 hex>`). */
export const MAX_IMAGE_REF_CHARS = 512;
/** Longest URL carried in a lane spec. */
export const MAX_URL_CHARS = 2048;
/** Longest free-text field in a payload (hold reason, message, recovery note). */
export const MAX_TEXT_CHARS = 1024;
/** Longest operation id or `forced_by` value. */
export const MAX_REF_CHARS = 128;
/** Largest sealed-secret ciphertext (JIT configs are a few KiB). */
export const MAX_SEALED_CIPHERTEXT_BYTES = 16 * 1024;
/**
 * Most lanes in one inventory snapshot, and so the highest `control.maxLanes` an agent may configure: a host
 * must be able to report every lane it runs (see {@link MAX_INVENTORY_ENVELOPE_BYTES} for the size budget).
 */
export const MAX_INVENTORY_LANES = 256;
/** Most unmanaged runners in one inventory snapshot; an agent that finds more reports the first ones. */
export const MAX_INVENTORY_UNMANAGED = 64;
/** Most entries in each list of an agent's allowlist (`control.scopes`, `pools`, `images`, ...). */
export const MAX_ALLOWLIST_ENTRIES = 32;
/** Most keys in one trusted key set. */
export const MAX_KEYSET_KEYS = 16;
/** Largest encoded `SignedKeySet`. */
export const MAX_KEYSET_BYTES = 64 * 1024;

/** Largest message the local gRPC status socket receives (well below grpc-js' 4 MiB default). */
export const MAX_GRPC_MESSAGE_BYTES = 16 * 1024;
/** Most signed results the agent keeps for duplicate deliveries. */
export const MAX_RECENT_RESULTS = 1024;
/** Most audit records `GetStatus` returns. */
export const MAX_AUDIT_TAIL = 200;
/** Largest config or policy file accepted. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Largest single audit line. */
export const MAX_AUDIT_LINE_BYTES = 64 * 1024;

/** Most NATS servers a coordinator policy or an agent config lists (`natsServers`, `nats.servers`). */
export const MAX_NATS_SERVERS = 16;
/** Most JetStream replicas of the coordinator's KV buckets and audit stream (JetStream's own maximum). */
export const MAX_JETSTREAM_REPLICAS = 5;

/**
 * GitHub's documented secondary-limit guidance for content-generating requests: in general no more than 80 a
 * minute and 500 an hour (docs.github.com, "Rate limits for the REST API", "About secondary rate limits").
 * The defaults of the policy's `github.createBudget`.
 */
export const DEFAULT_CREATES_PER_MINUTE = 80;
/** See {@link DEFAULT_CREATES_PER_MINUTE}. */
export const DEFAULT_CREATES_PER_HOUR = 500;
/** Upper bounds of `github.createBudget` (a GHES instance may allow more than github.com). */
export const MAX_CREATES_PER_MINUTE = 10_000;
/** See {@link MAX_CREATES_PER_MINUTE}. */
export const MAX_CREATES_PER_HOUR = 100_000;
