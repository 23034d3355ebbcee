/**
 * The coordinator policy's shape (`lanekeeper.yaml`): what {@link parsePolicy} returns. The schema, the parser and
 * the defaults are in `policy.ts`, the cross-field rules in `policy-cross-check.ts`.
 */
import type { BackendName } from "./agent-config.js";

/** GitHub credentials: a token read from an environment variable, or a GitHub App. */
export type GitHubAuthPolicy =
  | { tokenEnv: string }
  | { app: { appId: number; privateKeyFile: string; installationId: number } };

/** How the coordinator talks to GitHub. */
export interface GitHubPolicy {
  /** REST API base URL. @default "https://api.github.com" */
  apiUrl: string;
  /** Web URL runners register against (`config.sh --url`). @default "https://github.com" */
  webUrl: string;
  auth: GitHubAuthPolicy;
  /**
   * Content-creating requests (JIT configs, registration tokens) every coordinator sharing this credential may send
   * together; beyond it creates wait (docs/coordinator.md, "Create budget"). Absent: GitHub's documented
   * secondary-limit guidance, {@link DEFAULT_CREATES_PER_MINUTE} a minute and {@link DEFAULT_CREATES_PER_HOUR} an hour.
   */
  createBudget?: CreateBudgetPolicy | undefined;
}

/** The create budget (`github.createBudget`); each field defaults to GitHub's guidance. */
export interface CreateBudgetPolicy {
  /** @default DEFAULT_CREATES_PER_MINUTE (80) */
  perMinute?: number | undefined;
  /** @default DEFAULT_CREATES_PER_HOUR (500) */
  perHour?: number | undefined;
}

/** Drain protocol timing. */
export interface DrainPolicy {
  /** How long a lane must look idle (agent and GitHub agree) before it is stopped. @default 15000 */
  settleMs: number;
  /** After this, a drain turns into needs-attention (never into a kill). @default 3600000 */
  deadlineMs: number;
  /** Poll interval while draining. @default 5000 */
  pollMs: number;
}

/** The coordinator's own settings. */
export interface CoordinatorPolicy {
  /** Ed25519 intent-signing key (PKCS#8 PEM, mode 0600). */
  keyFile: string;
  /**
   * NATS server URL (no credentials in the URL). With `natsServers` set, the first of them: the policy gives
   * `natsUrl` (one server) or `natsServers` (a cluster), never both.
   */
  natsUrl: string;
  /**
   * Every NATS server the coordinator may connect to (the servers of one cluster, or `[natsUrl]`). The client
   * picks one and fails over to the others. @default [natsUrl]
   */
  natsServers: string[];
  /**
   * JetStream replicas of the coordinator's KV buckets (lane records, sequences, leader lock, inventories, audit
   * anchors) and of the audit stream, when they are created; at start the coordinator refuses existing ones with
   * another replica count (`JETSTREAM_REPLICAS_MISMATCH`). 3 on a 3-node cluster. @default 1
   */
  jetstreamReplicas: number;
  /** NATS user for user/password auth. */
  natsUser?: string | undefined;
  /** Environment variable holding the NATS password (never the password itself). */
  natsPasswordEnv?: string | undefined;
  /** NATS credentials file. */
  natsCredsFile?: string | undefined;
  /** Local copy of the audit chain. @default "/var/lib/lanekeeper/audit.jsonl" */
  auditFile: string;
  /** Intent lifetime. @default 60000 */
  intentTtlMs: number;
  /** How long to wait for a signed result. @default 30000 */
  resultTimeoutMs: number;
  /**
   * How long `verify-online` / `verify-gone` wait for GitHub and the host to show a created, restarted or removed
   * lane; past it the operation fails with a recovery note. @default 120000
   */
  verifyTimeoutMs: number;
  /** Actions `apply` (and each `serve` cycle) carries out at the same time, over all hosts. @default 4 */
  applyConcurrency: number;
  /** Interval of the `serve` reconcile loop. @default 30000 */
  reconcileIntervalMs: number;
  drain: DrainPolicy;
  /** The `workflow_job` webhook endpoint of `lanekeeper serve`; absent: no endpoint (REST reconciliation only). */
  webhook?: WebhookPolicy | undefined;
  /** How demand (workflow jobs) is reconciled with the REST API; every field has a default. */
  demand?: DemandPolicy | undefined;
}

/** Where `lanekeeper serve` receives GitHub's `workflow_job` webhooks. */
export interface WebhookPolicy {
  /** `host:port` to listen on (port 0: any free port). */
  listen: string;
  /** Request path GitHub posts to. @default "/github/webhook" */
  path: string;
  /** Environment variable holding the webhook secret (never the secret itself). */
  secretEnv: string;
  /** Larger request bodies are refused with 413 without being read. @default 1048576 */
  maxBodyBytes: number;
}

/** Budget of the REST reconciliation of demand (see docs/scaling.md, "Demand sources"). */
export interface DemandPolicy {
  /** Per scope, how often queued and in-progress runs and their jobs are listed. @default 30000 */
  restIntervalMs?: number | undefined;
  /** Per organization scope, how often its repository list is read. @default 600000 */
  orgReposIntervalMs?: number | undefined;
  /** How long completed jobs are kept (scale-down hysteresis reads them). @default 900000 */
  completedRetentionMs?: number | undefined;
}

/** An enrolled host: its public keys from `lanekeeper-agent init`, its opt-in and capacity. */
export interface HostPolicy {
  enrolled: {
    /** Ed25519 identity public key: base64 of the raw 32 bytes, or an SPKI PEM. */
    identityKey: string;
    /** X25519 sealing public key: base64 of the raw 32 bytes, or an SPKI PEM. */
    sealingKey: string;
  };
  /** Lanes may be placed here only when true. @default false */
  optIn: boolean;
  /** Most lanes on this host. */
  capacity: number;
}

/** A scope runners register with. */
export interface ScopePolicy {
  /** Lanes may register here only when true. @default false */
  optIn: boolean;
  /** Runner group (organization scopes only). */
  runnerGroup?: string | undefined;
}

/** Resource limits of a lane. */
export interface PoolLimits {
  /** CPU limit in thousandths of a core. */
  cpuMillis?: number | undefined;
  /** Memory limit in bytes. */
  memoryBytes?: number | undefined;
}

/**
 * How a pool's lanes move to a new runner version or image (docs/runner-versions.md). Every field has a default,
 * compiled by {@link resolvePoolUpgrade}.
 */
export interface PoolUpgradePolicy {
  /**
   * Lanes of one group (scope, pool) that may be out of service for an upgrade at once; lanes already out of
   * service (draining, stopped, needs-attention) count against it. @default 1
   */
  maxUnavailable?: number | undefined;
  /**
   * `plan` warns when a pinned `runnerVersion` is more than this many minor releases behind GitHub's current
   * release (GitHub stops sending jobs to runners that fall too far behind). @default 1
   */
  maxVersionLag?: number | undefined;
  /**
   * When upgrades may start: outside it the planner starts no new upgrade of the pool's lanes (one already under
   * way finishes). @default none (upgrades may start at any time)
   */
  window?: UpgradeWindow | undefined;
}

/**
 * A recurring maintenance window for upgrades: from each time `cron` fires (in `timezone`), for `duration`.
 */
export interface UpgradeWindow {
  /** Shown by `plan` while lanes wait for the window ("waiting for upgrade window <name>, opens <time>"). */
  name: string;
  /** When the window opens: a 5-field cron expression, e.g. `"0 22 * * 1-5"` (22:00 Monday to Friday). */
  cron: string;
  /** How long it stays open from each start, e.g. `"4h"` (elapsed time, so a DST change does not shift the end). */
  duration: string;
  /** IANA time zone the cron expression is read in. @default "UTC" */
  timezone: string;
}

/** {@link PoolUpgradePolicy} with its defaults filled in. */
export interface ResolvedPoolUpgrade {
  readonly maxUnavailable: number;
  readonly maxVersionLag: number;
  /** `undefined`: no window, upgrades may start at any time. */
  readonly window: UpgradeWindow | undefined;
}

/** A class of lanes. */
export interface PoolPolicy {
  /** Capability labels (the `lk-` prefix is reserved). @default [] */
  labels: string[];
  backend: BackendName;
  /** @default "persistent" */
  mode: "persistent" | "ephemeral";
  /**
   * Runner version (systemd pools, required there): `x.y.z` pins it, `latest` follows GitHub's current release.
   * A change rolls across the pool's lanes (docs/runner-versions.md).
   */
  runnerVersion?: string | undefined;
  /** Image pinned by digest (container pools, required there). */
  image?: string | undefined;
  limits?: PoolLimits | undefined;
  /** Rolling upgrades of the pool's lanes to a new runner version or image. */
  upgrade?: PoolUpgradePolicy | undefined;
}

/**
 * A time window that raises a scaling group's floor: from each time `cron` fires (in `timezone`) for
 * `duration`, at least `min` lanes (and, when set, at least `idle` idle lanes).
 */
export interface ScalingSchedule {
  /** Shown in `plan` and `status` when the window is in force. */
  name: string;
  /** When the window starts: a 5-field cron expression, e.g. `"0 8 * * 1-5"` (08:00 Monday to Friday). */
  cron: string;
  /** How long the window lasts from each start, e.g. `"10h"` (elapsed time, so a DST change does not shift the end). */
  duration: string;
  /** IANA time zone the cron expression is read in. @default "UTC" */
  timezone: string;
  /** Lanes kept at least, while in force (never above `max`). */
  min: number;
  /** Idle lanes kept ready beyond the queued jobs, while in force (the larger of this and `scaling.idle`). */
  idle?: number | undefined;
}

/** Queue-driven capacity: lanes follow the busy and queued jobs between `min` and `max`. */
export interface ScalingPolicy {
  /** Lanes kept at least, whatever the demand. */
  min: number;
  /** Lanes at most, whatever the demand; queued jobs beyond it wait for room. */
  max: number;
  /** Idle lanes kept ready beyond the busy and queued jobs. @default 0 */
  idle: number;
  /** How long a lane must have been idle before scale-down removes it, e.g. `"90s"`, `"5m"`. @default "5m" */
  scaleDownAfter: string;
  /** Windows that raise `min` (and optionally `idle`). @default [] */
  schedules: ScalingSchedule[];
}

/**
 * Desired lanes of `pool` for `scope`, spread over `hosts`: exactly one of a fixed `count`, or `scaling`
 * (queue-driven, see docs/scaling.md).
 */
export interface LanePolicy {
  scope: string;
  pool: string;
  /** A fixed number of lanes. */
  count?: number | undefined;
  /** Lanes that follow the job queue. */
  scaling?: ScalingPolicy | undefined;
  hosts: string[];
}

/** The parsed, frozen policy. */
export interface Policy {
  github: GitHubPolicy;
  coordinator: CoordinatorPolicy;
  /** @default {} */
  hosts: Record<string, HostPolicy>;
  /** @default {} */
  scopes: Record<string, ScopePolicy>;
  /** @default {} */
  pools: Record<string, PoolPolicy>;
  /** @default [] */
  lanes: LanePolicy[];
}
