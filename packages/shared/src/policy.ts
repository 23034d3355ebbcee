/**
 * The coordinator policy (`lanekeeper.yaml`): GitHub auth, enrolled hosts, scopes, pools and desired lanes.
 * Nothing is used unless it opted in: a lane may only name hosts with `optIn: true` and a scope with
 * `optIn: true`. Empty maps mean no lanes at all.
 */
import { z } from "zod";
import type { BackendName } from "./agent-config.js";
import {
  absolutePathField,
  envVarField,
  hostIdField,
  httpUrlField,
  imageField,
  labelField,
  msField,
  natsServersField,
  natsUrlField,
  poolNameField,
  runnerGroupField,
  runnerVersionField,
  scopeField,
  cronField,
  durationField,
  timeZoneField,
  uniqueList,
} from "./config-fields.js";
import { formatConfigPath, loadYamlConfig } from "./config-loader.js";
import { type ConfigIssue, LanekeeperError } from "./errors.js";
import { keyIdOf, parseSealingPublicKey, parseSigningPublicKey } from "./keys.js";
import { DEFAULT_CREATES_PER_HOUR, DEFAULT_CREATES_PER_MINUTE, MAX_CREATES_PER_HOUR, MAX_CREATES_PER_MINUTE, MAX_INTENT_TTL_MS, MAX_JETSTREAM_REPLICAS, MAX_LABELS } from "./limits.js";
import { parseScope } from "./names.js";
import { parseDurationString } from "./scaling-schedule.js";

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

/** The word `runnerVersion` takes to follow GitHub's current runner release. */
export const LATEST_RUNNER_VERSION = "latest";

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

/** A pool's upgrade settings with the defaults filled in (pure; the planner and `plan` use it). */
export function resolvePoolUpgrade(pool: Pick<PoolPolicy, "upgrade">): ResolvedPoolUpgrade {
  return { maxUnavailable: pool.upgrade?.maxUnavailable ?? 1, maxVersionLag: pool.upgrade?.maxVersionLag ?? 1, window: pool.upgrade?.window };
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

const githubSchema = z.strictObject({
  apiUrl: httpUrlField.default("https://api.github.com"),
  webUrl: httpUrlField.default("https://github.com"),
  auth: z.union([
    z.strictObject({ tokenEnv: envVarField }),
    z.strictObject({
      app: z.strictObject({
        appId: z.number().int().positive(),
        privateKeyFile: absolutePathField,
        installationId: z.number().int().positive(),
      }),
    }),
  ]),
  createBudget: z
    .strictObject({
      perMinute: z.number().int().min(1).max(MAX_CREATES_PER_MINUTE).optional(),
      perHour: z.number().int().min(1).max(MAX_CREATES_PER_HOUR).optional(),
    })
    .optional(),
});

const coordinatorSchema = z
  .strictObject({
  keyFile: absolutePathField,
  natsUrl: natsUrlField.optional(),
  natsServers: natsServersField.optional(),
  jetstreamReplicas: z.number().int().min(1).max(MAX_JETSTREAM_REPLICAS).default(1),
  natsUser: z.string().min(1).max(256).optional(),
  natsPasswordEnv: envVarField.optional(),
  natsCredsFile: absolutePathField.optional(),
  auditFile: absolutePathField.default("/var/lib/lanekeeper/audit.jsonl"),
  intentTtlMs: msField(1000, MAX_INTENT_TTL_MS).default(60_000),
  resultTimeoutMs: msField(100, 3_600_000).default(30_000),
  verifyTimeoutMs: msField(1000, 3_600_000).default(120_000),
  applyConcurrency: z.number().int().min(1).max(64).default(4),
  reconcileIntervalMs: msField(1000, 86_400_000).default(30_000),
  drain: z
    .strictObject({
      settleMs: msField(0, 3_600_000).default(15_000),
      deadlineMs: msField(1000, 7 * 86_400_000).default(3_600_000),
      pollMs: msField(100, 600_000).default(5000),
    })
    .prefault({}),
  webhook: z
    .strictObject({
      listen: z
        .string()
        .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/, "must be host:port, e.g. 127.0.0.1:8787")
        .refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65_535, "port must be at most 65535")
        .meta({ description: "host:port the webhook endpoint listens on (port 0: any free port)." }),
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~/-]{0,255}$/, "must be an absolute URL path such as /github/webhook")
        .default("/github/webhook"),
      secretEnv: envVarField,
      // GitHub caps payloads at 25 MB; workflow_job deliveries are a few KB.
      maxBodyBytes: z.number().int().min(1024).max(26_214_400).default(1_048_576),
    })
    .optional(),
  demand: z
    .strictObject({
      restIntervalMs: msField(1000, 86_400_000).optional(),
      orgReposIntervalMs: msField(1000, 7 * 86_400_000).optional(),
      completedRetentionMs: msField(0, 7 * 86_400_000).optional(),
    })
    .optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.natsUrl === undefined) === (c.natsServers === undefined)) {
      ctx.addIssue({ code: "custom", path: [c.natsUrl === undefined ? "natsUrl" : "natsServers"], message: "give natsUrl (one server) or natsServers (a cluster), exactly one of them" });
    }
  })
  // One shape for every reader: natsUrl is the first server, natsServers the whole list.
  .transform(({ natsUrl, natsServers, ...rest }) => {
    const servers = natsServers ?? (natsUrl === undefined ? [] : [natsUrl]);
    return { ...rest, natsUrl: servers[0] ?? "", natsServers: servers };
  });

const hostSchema = z.strictObject({
  enrolled: z.strictObject({
    identityKey: z.string().meta({ description: "Ed25519 public key: base64 of the raw 32 bytes, or an SPKI PEM." }),
    sealingKey: z.string().meta({ description: "X25519 public key: base64 of the raw 32 bytes, or an SPKI PEM." }),
  }),
  optIn: z.boolean().default(false),
  capacity: z.number().int().min(0).max(1000),
});

const scopeSchema = z.strictObject({
  optIn: z.boolean().default(false),
  runnerGroup: runnerGroupField.optional(),
});

/** The name of a schedule or upgrade window (shown by `plan` and `status`). */
const windowNameField = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/, "must be 1-63 letters, digits, spaces, '.', '_' or '-'");

const poolSchema = z.strictObject({
  labels: uniqueList(labelField, "label").max(MAX_LABELS - 4).default([]),
  backend: z.enum(["systemd", "container"]),
  mode: z.enum(["persistent", "ephemeral"]).default("persistent"),
  runnerVersion: z
    .union([runnerVersionField, z.literal(LATEST_RUNNER_VERSION)])
    .optional()
    .meta({ description: "Runner version: x.y.z pins it, latest follows GitHub's current release." }),
  image: imageField.optional(),
  limits: z
    .strictObject({
      cpuMillis: z.number().int().min(1).max(1_024_000).optional(),
      memoryBytes: z.number().int().min(4 * 1024 * 1024).max(Number.MAX_SAFE_INTEGER).optional(),
    })
    .optional(),
  upgrade: z
    .strictObject({
      maxUnavailable: z.number().int().min(1).max(1000).optional().meta({ description: "Lanes of a group out of service for an upgrade at once. Default 1." }),
      maxVersionLag: z.number().int().min(0).max(1000).optional().meta({ description: "Minor releases a pinned runnerVersion may lag GitHub's current release before plan warns. Default 1." }),
      window: z
        .strictObject({
          name: windowNameField,
          cron: cronField,
          duration: durationField,
          timezone: timeZoneField.default("UTC"),
        })
        .optional()
        .meta({ description: "When upgrades may start (cron start, duration, time zone); outside it no new upgrade starts. Default: any time." }),
    })
    .optional(),
});

const laneCount = z.number().int().min(0).max(10_000);

const scheduleSchema = z.strictObject({
  name: windowNameField,
  cron: cronField,
  duration: durationField,
  timezone: timeZoneField.default("UTC"),
  min: laneCount,
  idle: laneCount.optional(),
});

const scalingSchema = z.strictObject({
  min: laneCount,
  max: laneCount,
  idle: laneCount.default(0),
  scaleDownAfter: durationField.default("5m"),
  schedules: z.array(scheduleSchema).max(32).default([]),
});

const laneSchema = z.strictObject({
  scope: scopeField,
  pool: poolNameField,
  count: laneCount.optional(),
  scaling: scalingSchema.optional(),
  hosts: uniqueList(hostIdField, "host").min(1),
});

/** The zod schema of the policy (exported for the JSON Schema generator). */
export const policySchema = z
  .strictObject({
    github: githubSchema,
    coordinator: coordinatorSchema,
    hosts: z.record(hostIdField, hostSchema).default({}),
    scopes: z.record(scopeField, scopeSchema).default({}),
    pools: z.record(poolNameField, poolSchema).default({}),
    lanes: z.array(laneSchema).default([]),
  })
  .meta({ title: "lanekeeper policy", description: "lanekeeper.yaml" });

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _policyMatches: Equal<z.output<typeof policySchema>, Policy> = true;
void _policyMatches;

function keyProblem(err: unknown): string {
  return err instanceof LanekeeperError ? err.message : "cannot be parsed";
}

function crossCheck(p: Policy): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (...path: (string | number)[]): string => formatConfigPath(path);

  if (p.coordinator.natsCredsFile !== undefined && p.coordinator.natsUser !== undefined) {
    issues.push({ path: at("coordinator", "natsCredsFile"), message: "use either natsCredsFile or natsUser/natsPasswordEnv, not both" });
  }
  if ((p.coordinator.natsUser === undefined) !== (p.coordinator.natsPasswordEnv === undefined)) {
    issues.push({ path: at("coordinator", "natsUser"), message: "natsUser and natsPasswordEnv go together" });
  }

  const identityOwners = new Map<string, string>();
  for (const [hostId, h] of Object.entries(p.hosts)) {
    try {
      const raw = parseSigningPublicKey(h.enrolled.identityKey);
      const keyId = keyIdOf(raw);
      const other = identityOwners.get(keyId);
      if (other !== undefined) {
        issues.push({ path: at("hosts", hostId, "enrolled", "identityKey"), message: `same identity key as host ${other}; each host has its own` });
      }
      identityOwners.set(keyId, hostId);
    } catch (err) {
      issues.push({ path: at("hosts", hostId, "enrolled", "identityKey"), message: keyProblem(err) });
    }
    try {
      parseSealingPublicKey(h.enrolled.sealingKey);
    } catch (err) {
      issues.push({ path: at("hosts", hostId, "enrolled", "sealingKey"), message: keyProblem(err) });
    }
  }

  for (const [scope, s] of Object.entries(p.scopes)) {
    if (s.runnerGroup !== undefined && parseScope(scope).kind !== "org") {
      issues.push({ path: at("scopes", scope, "runnerGroup"), message: "runner groups apply to organization scopes (org:<org>) only" });
    }
  }

  for (const [name, pool] of Object.entries(p.pools)) {
    if (pool.backend === "systemd") {
      if (pool.runnerVersion === undefined) {
        issues.push({ path: at("pools", name, "runnerVersion"), message: "systemd pools need a runnerVersion, e.g. 2.330.0 or latest" });
      }
      if (pool.image !== undefined) issues.push({ path: at("pools", name, "image"), message: "image applies to container pools only" });
    } else {
      if (pool.image === undefined) {
        issues.push({ path: at("pools", name, "image"), message: "container pools need an image pinned by digest (name@sha256:<64 hex>)" });
      }
      if (pool.runnerVersion !== undefined) {
        issues.push({ path: at("pools", name, "runnerVersion"), message: "runnerVersion applies to systemd pools only (the image pins the runner)" });
      }
    }
    const window = pool.upgrade?.window;
    if (window !== undefined && parseDurationString(window.duration) === 0) {
      issues.push({ path: at("pools", name, "upgrade", "window", "duration"), message: "must be longer than 0" });
    }
  }

  const seenLanes = new Map<string, number>();
  p.lanes.forEach((lane, i) => {
    const key = `${lane.scope}\u0000${lane.pool}`;
    const first = seenLanes.get(key);
    if (first !== undefined) {
      issues.push({ path: at("lanes", i), message: `lanes[${first}] already declares scope ${lane.scope} with pool ${lane.pool}; merge them` });
    }
    seenLanes.set(key, i);

    const scope = p.scopes[lane.scope];
    if (!Object.hasOwn(p.scopes, lane.scope) || scope === undefined) {
      issues.push({ path: at("lanes", i, "scope"), message: `scope "${lane.scope}" is not declared under scopes` });
    } else if (!scope.optIn) {
      issues.push({
        path: at("lanes", i, "scope"),
        message: `scope "${lane.scope}" has not opted in; set ${at("scopes", lane.scope, "optIn")}: true to let lanes register there`,
      });
    }
    if (!Object.hasOwn(p.pools, lane.pool)) {
      issues.push({ path: at("lanes", i, "pool"), message: `pool "${lane.pool}" is not declared under pools` });
    }
    let capacity = 0;
    lane.hosts.forEach((hostId, j) => {
      const host = p.hosts[hostId];
      if (!Object.hasOwn(p.hosts, hostId) || host === undefined) {
        issues.push({ path: at("lanes", i, "hosts", j), message: `host "${hostId}" is not enrolled under hosts` });
      } else if (!host.optIn) {
        issues.push({
          path: at("lanes", i, "hosts", j),
          message: `host "${hostId}" has not opted in; set ${at("hosts", hostId, "optIn")}: true to let lanes use it`,
        });
      } else {
        capacity += host.capacity;
      }
    });
    if ((lane.count === undefined) === (lane.scaling === undefined)) {
      issues.push({
        path: at("lanes", i),
        message: lane.count === undefined ? "set either count (a fixed number of lanes) or scaling (min/max lanes following the job queue)" : "set count or scaling, not both",
      });
    }
    if (lane.count !== undefined && lane.count > capacity) {
      issues.push({
        path: at("lanes", i, "count"),
        message: `${lane.count} lanes do not fit: the listed opted-in hosts have a total capacity of ${capacity}`,
      });
    }
    if (lane.scaling !== undefined) issues.push(...scalingIssues(lane.scaling, capacity, (...rest) => at("lanes", i, "scaling", ...rest)));
  });
  return issues;
}

function scalingIssues(s: ScalingPolicy, capacity: number, at: (...path: (string | number)[]) => string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (s.max < s.min) issues.push({ path: at("max"), message: `max (${s.max}) is below min (${s.min})` });
  if (s.max > capacity) {
    issues.push({ path: at("max"), message: `${s.max} lanes do not fit: the listed opted-in hosts have a total capacity of ${capacity}` });
  }
  if (s.idle > s.max) issues.push({ path: at("idle"), message: `idle (${s.idle}) is above max (${s.max}): at most max lanes ever exist` });
  const names = new Map<string, number>();
  s.schedules.forEach((w, j) => {
    const first = names.get(w.name);
    if (first !== undefined) issues.push({ path: at("schedules", j, "name"), message: `schedules[${first}] has the same name` });
    names.set(w.name, j);
    if (w.min > s.max) issues.push({ path: at("schedules", j, "min"), message: `min (${w.min}) is above the group's max (${s.max})` });
    if (w.idle !== undefined && w.idle > s.max) {
      issues.push({ path: at("schedules", j, "idle"), message: `idle (${w.idle}) is above the group's max (${s.max})` });
    }
    if (parseDurationString(w.duration) === 0) issues.push({ path: at("schedules", j, "duration"), message: "must be longer than 0" });
  });
  return issues;
}

/**
 * Parse and validate the policy YAML, including cross-field rules. Throws `ConfigError` listing every problem
 * as `path: message`, naming `file` (where the caller read the text) when given. The result is deeply frozen.
 */
export function parsePolicy(yamlText: string, file?: string): Policy {
  return loadYamlConfig(yamlText, policySchema, "policy", crossCheck, file);
}

/** The create budget with its defaults filled in (GitHub's guidance for what the policy leaves out). Pure. */
export function resolveCreateBudget(github: Pick<GitHubPolicy, "createBudget">): { readonly perMinute: number; readonly perHour: number } {
  return {
    perMinute: github.createBudget?.perMinute ?? DEFAULT_CREATES_PER_MINUTE,
    perHour: github.createBudget?.perHour ?? DEFAULT_CREATES_PER_HOUR,
  };
}
