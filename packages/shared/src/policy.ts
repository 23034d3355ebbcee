/**
 * The coordinator policy (`lanekeeper.yaml`): GitHub auth, enrolled hosts, scopes, pools and desired lanes.
 * Nothing is used unless it opted in: a lane may only name hosts with `optIn: true` and a scope with
 * `optIn: true`. Empty maps mean no lanes at all.
 */
import { z } from "zod";
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
import { loadYamlConfig } from "./config-loader.js";
import { policyCrossCheck } from "./policy-cross-check.js";
import type { GitHubPolicy, Policy, PoolPolicy, ResolvedPoolUpgrade } from "./policy-model.js";
import { DEFAULT_CREATES_PER_HOUR, DEFAULT_CREATES_PER_MINUTE, MAX_CREATES_PER_HOUR, MAX_CREATES_PER_MINUTE, MAX_INTENT_TTL_MS, MAX_JETSTREAM_REPLICAS, MAX_LABELS } from "./limits.js";

export type * from "./policy-model.js";

/** The word `runnerVersion` takes to follow GitHub's current runner release. */
export const LATEST_RUNNER_VERSION = "latest";

/** A pool's upgrade settings with the defaults filled in (pure; the planner and `plan` use it). */
export function resolvePoolUpgrade(pool: Pick<PoolPolicy, "upgrade">): ResolvedPoolUpgrade {
  return { maxUnavailable: pool.upgrade?.maxUnavailable ?? 1, maxVersionLag: pool.upgrade?.maxVersionLag ?? 1, window: pool.upgrade?.window };
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

/**
 * Parse and validate the policy YAML, including cross-field rules. Throws `ConfigError` listing every problem
 * as `path: message`, naming `file` (where the caller read the text) when given. The result is deeply frozen.
 */
export function parsePolicy(yamlText: string, file?: string): Policy {
  return loadYamlConfig(yamlText, policySchema, "policy", policyCrossCheck, file);
}

/** The create budget with its defaults filled in (GitHub's guidance for what the policy leaves out). Pure. */
export function resolveCreateBudget(github: Pick<GitHubPolicy, "createBudget">): { readonly perMinute: number; readonly perHour: number } {
  return {
    perMinute: github.createBudget?.perMinute ?? DEFAULT_CREATES_PER_MINUTE,
    perHour: github.createBudget?.perHour ?? DEFAULT_CREATES_PER_HOUR,
  };
}
