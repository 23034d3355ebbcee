/**
 * Saved plans: `lanekeeper plan --out plan.json` writes the reviewed plan, `lanekeeper apply plan.json` applies
 * exactly its actions after re-checking them. The zod schema below is the one definition of the file format;
 * `savedPlanJsonSchema()` publishes it (`npm run schemas` writes `schemas/saved-plan.schema.json`).
 */
import { createHash } from "node:crypto";
import { ACTION_KINDS, Backend, canonicalJson, LaneMode, LanekeeperError, type Policy } from "@lanekeeper/shared";
import { z } from "zod";
import type { CoordinatorErrorCode } from "../error-codes.js";
import type { Action } from "./action.js";

/** The `format` field of every saved plan. */
export const SAVED_PLAN_FORMAT = "lanekeeper.saved-plan";
/** The version this coordinator writes and the only one it reads. */
export const SAVED_PLAN_VERSION = 1;
/** How long a saved plan may be applied after it was made, unless `plan --expires-in` says otherwise. */
export const DEFAULT_SAVED_PLAN_TTL_MS = 60 * 60_000;
/** The largest saved plan `apply` reads (a plan of thousands of actions with their evidence fits easily). */
export const MAX_SAVED_PLAN_BYTES = 16 * 1024 * 1024;

const id = z.string().min(1).max(256);
const ms = z.number().int().nonnegative();
const labels = z.array(z.string().max(256)).max(64);

const planStepSchema = z.enum([
  "write-record",
  "delete-record",
  "set-draining-labels",
  "restore-labels",
  "set-labels",
  "mint-registration",
  "mint-remove-token",
  "send-create",
  "send-drain",
  "send-undrain",
  "send-arm",
  "send-restart",
  "send-remove",
  "send-upgrade",
  "wait-idle",
  "delete-registration",
  "verify-online",
  "verify-gone",
  "verify-labels",
  "verify-upgraded",
]);
const orphanKindSchema = z.enum(["registration-without-lane", "lane-without-registration", "record-without-lane"]);
const recordStateSchema = z.enum(["creating", "active", "draining", "removing", "needs-attention", "orphaned"]);
const at = { at: planStepSchema.optional() };

const guardSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("record-revision"), laneId: id, revision: z.number().int().nonnegative().nullable(), ...at }),
  z.strictObject({ kind: z.literal("scope-opted-in"), scope: id, ...at }),
  z.strictObject({ kind: z.literal("host-opted-in"), hostId: id, ...at }),
  z.strictObject({
    kind: z.literal("host-allows"),
    hostId: id,
    action: z.enum(ACTION_KINDS as [string, ...string[]]),
    scope: id,
    pool: id,
    backend: id,
    image: z.string().max(512).optional(),
    ...at,
  }),
  z.strictObject({ kind: z.literal("host-capacity"), hostId: id, maxLanes: ms, ...at }),
  z.strictObject({ kind: z.literal("lane-id-unused"), laneId: id, ...at }),
  z.strictObject({ kind: z.literal("lane-marker-valid"), hostId: id, laneId: id, scope: id, pool: id, ...at }),
  z.strictObject({ kind: z.literal("lane-absent-on-host"), hostId: id, laneId: id, ...at }),
  z.strictObject({ kind: z.literal("lane-not-held"), hostId: id, laneId: id, ...at }),
  z.strictObject({ kind: z.literal("no-job-evidence"), hostId: id, laneId: id, ...at }),
  z.strictObject({ kind: z.literal("runner-id-matches"), scope: id, laneId: id, runnerId: ms, ...at }),
  z.strictObject({ kind: z.literal("runner-identity-labels"), scope: id, runnerId: ms, laneId: id, hostId: id, pool: id, ...at }),
  z.strictObject({ kind: z.literal("runner-not-busy"), scope: id, runnerId: ms, ...at }),
  z.strictObject({ kind: z.literal("registration-absent"), scope: id, laneId: id, runnerId: ms.optional(), ...at }),
  z.strictObject({ kind: z.literal("upgrade-window-open"), pool: id, window: z.string().max(256), ...at }),
  z.strictObject({
    kind: z.literal("orphan-still-marked"),
    laneId: id,
    orphanKind: orphanKindSchema,
    markedAtMs: ms,
    notBeforeMs: ms,
    runnerId: ms.optional(),
    ...at,
  }),
]);

const evidenceSchema = z.discriminatedUnion("source", [
  z.strictObject({ source: z.literal("github"), scope: id, runnerId: ms, runnerName: z.string().max(256), status: z.string().max(64), busy: z.boolean(), labels }),
  z.strictObject({
    source: z.literal("host"),
    hostId: id,
    laneId: id,
    state: z.string().max(64),
    health: z.string().max(64),
    jobRunning: z.boolean(),
    runnerId: ms,
    draining: z.boolean(),
    held: z.boolean(),
    stateSinceMs: z.number().int(),
  }),
  z.strictObject({
    source: z.literal("record"),
    laneId: id,
    state: z.string().max(64),
    scope: id,
    pool: id,
    hostId: id,
    runnerId: ms.nullable(),
    revision: ms,
    createdAtMs: ms,
    orphanMarkedAtMs: ms.nullable(),
  }),
  z.strictObject({ source: z.literal("policy"), path: z.string().max(512), value: z.union([z.string().max(1024), z.number(), z.boolean()]) }),
  z.strictObject({ source: z.literal("absent"), what: z.enum(["registration", "host-lane", "record"]), where: z.string().max(256) }),
  z.strictObject({ source: z.literal("operation"), operationId: z.string().max(128), lease: z.enum(["live", "gone"]) }),
  z.strictObject({ source: z.literal("placement"), hostId: id, hostLanes: ms, capacity: ms, groupLanesOnHost: ms, inventoryKnown: z.boolean() }),
  z.strictObject({
    source: z.literal("demand"),
    scope: id,
    pool: id,
    known: z.boolean(),
    queuedJobIds: z.array(ms).max(64),
    queued: ms,
    takenJobIds: z.array(ms).max(64),
    runningJobIds: z.array(ms).max(64),
    busy: ms,
    idle: ms,
    starting: ms,
    idleTarget: ms,
    min: ms,
    max: ms,
    wanted: ms,
  }),
  z.strictObject({
    source: z.literal("schedule"),
    name: z.string().max(256),
    cron: z.string().max(256),
    timezone: z.string().max(256),
    min: ms,
    idle: ms.nullable(),
    startMs: ms,
    endMs: ms,
  }),
  z.strictObject({
    source: z.literal("upgrade-window"),
    pool: id,
    name: z.string().max(256),
    cron: z.string().max(256),
    duration: z.string().max(64),
    timezone: z.string().max(256),
    open: z.boolean(),
    startMs: ms.nullable(),
    endMs: ms.nullable(),
    opensAtMs: ms.nullable(),
    opensAt: z.string().max(256).nullable(),
  }),
  z.strictObject({ source: z.literal("idle"), laneId: id, idleSinceMs: z.number().int(), idleForMs: z.number().int(), scaleDownAfterMs: ms }),
]);

const reasonCodeSchema = z.enum([
  "SCALE_UP",
  "SCALE_DOWN",
  "SCALE_DOWN_BUSY",
  "REUSE_DRAINED",
  "MISPLACED",
  "MISPLACED_BUSY",
  "NOT_IN_POLICY",
  "NOT_IN_POLICY_BUSY",
  "RESUME_REMOVE",
  "REMOVED",
  "LEFTOVER_DRAIN",
  "UNARMED",
  "STOPPED",
  "LABEL_DRIFT",
  "RUNNER_ID_CHANGED",
  "CREATE_COMPLETED",
  "ORPHAN_SEEN",
  "ORPHAN_CONFIRMED",
  "ORPHAN_CLEARED",
  "OPERATOR",
  "CREATE_FAILED",
  "CREATE_INTERRUPTED",
  "DRAIN_INTERRUPTED",
  "SMOKE",
  "SMOKE_EXPIRED",
  "VERSION_DRIFT",
  "IMAGE_DRIFT",
]);

const base = {
  id: z.string().min(1).max(300),
  laneId: id,
  scope: id,
  pool: id,
  hostId: id,
  reason: z.strictObject({ code: reasonCodeSchema, message: z.string().max(2000) }),
  guards: z.array(guardSchema).max(64),
  evidence: z.array(evidenceSchema).max(64),
  steps: z.array(planStepSchema).min(1).max(64),
  dependsOn: z.array(z.string().min(1).max(300)).max(64),
};
const runnerId = ms.optional();

const laneSpecSchema = z.strictObject({
  laneId: id,
  scope: id,
  pool: id,
  backend: z.enum(Backend),
  mode: z.enum(LaneMode),
  labels,
  runnerGroup: z.string().max(256),
  githubUrl: z.string().max(2048),
  runnerVersion: z.string().max(64),
  image: z.string().max(512),
  limits: z.strictObject({ cpuMillis: ms, memoryBytes: ms }).optional(),
});

const laneRunnerSchema = z.strictObject({ runnerVersion: z.string().max(64), image: z.string().max(512) });

const actionSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    ...base,
    kind: z.literal("create"),
    spec: laneSpecSchema,
    smoke: z.strictObject({ runId: z.string().min(1).max(256), label: z.string().min(1).max(256), leaseUntilMs: ms }).optional(),
  }),
  z.strictObject({ ...base, kind: z.literal("drain"), runnerId, drainReason: z.enum(["scale-down", "move", "operator"]) }),
  z.strictObject({ ...base, kind: z.literal("undrain"), runnerId, labels }),
  z.strictObject({ ...base, kind: z.literal("arm"), runnerName: z.string().min(1).max(256), labels }),
  z.strictObject({ ...base, kind: z.literal("restart"), runnerId, labels }),
  z.strictObject({ ...base, kind: z.literal("remove"), runnerId }),
  z.strictObject({ ...base, kind: z.literal("upgrade"), runnerId, labels, from: laneRunnerSchema, to: laneRunnerSchema }),
  z.strictObject({ ...base, kind: z.literal("relabel"), runnerId: ms, from: labels, to: labels }),
  z.strictObject({
    ...base,
    kind: z.literal("mark-orphan"),
    orphanKind: orphanKindSchema,
    runnerId,
    mark: z.strictObject({
      kind: orphanKindSchema,
      markedAtMs: ms,
      runnerId: ms.optional(),
      previousState: recordStateSchema.optional(),
      planId: z.string().max(256).optional(),
    }),
  }),
  z.strictObject({ ...base, kind: z.literal("cleanup-orphan"), orphanKind: orphanKindSchema, runnerId }),
  z.strictObject({ ...base, kind: z.literal("forget-record") }),
  z.strictObject({
    ...base,
    kind: z.literal("update-record"),
    changes: z.strictObject({ state: recordStateSchema.optional(), runnerId: ms.optional() }),
  }),
]);

/** The saved plan file (`plan --out`), version 1. Unknown keys are refused at every level. */
export const savedPlanSchema = z.strictObject({
  format: z.literal(SAVED_PLAN_FORMAT),
  version: z.literal(SAVED_PLAN_VERSION),
  planId: z.string().min(1).max(256),
  /** When the plan was made (ISO 8601, and ms since the epoch, which is what is checked). */
  createdAt: z.string().max(64),
  createdAtMs: ms,
  /** After this, `apply` refuses the plan (`PLAN_STALE`, reason `EXPIRED`). */
  expiresAt: z.string().max(64),
  expiresAtMs: ms,
  /** The policy the plan was made from: its file and the SHA-256 of its canonical form (comments do not count). */
  policy: z.strictObject({ path: z.string().max(4096), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/) }),
  /** The actions, in execution order, each with its guards and the evidence it was made from. */
  actions: z.array(actionSchema).max(100_000),
  /** Number of actions of each kind (a summary for the reader; `apply` recounts). */
  counts: z.record(z.string().max(64), ms),
});

/** A saved plan as read from its file. */
export type SavedPlan = z.infer<typeof savedPlanSchema>;

// Every action the planner makes must fit the file format: this fails to compile when Action grows a field the
// schema does not describe.
type Writable<T> = T extends readonly (infer U)[] ? Writable<U>[] : T extends object ? { -readonly [K in keyof T]: Writable<T[K]> } : T;
type SchemaInput = z.input<typeof actionSchema>;
const _everyActionFits = (a: Writable<Action>): SchemaInput => a;
void _everyActionFits;
// ... and has no member the schema (strict objects) would refuse.
type ExtraKeys<A> = A extends { readonly kind: infer K } ? Exclude<keyof A, keyof Extract<SchemaInput, { kind: K }>> : never;
const _noExtraMembers: [ExtraKeys<Action>] extends [never] ? true : false = true;
void _noExtraMembers;

/** JSON Schema of the saved plan file, for editors and other tools. */
export function savedPlanJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(savedPlanSchema, { io: "input", target: "draft-2020-12", unrepresentable: "any", reused: "ref" });
}

/** Why a plan file was refused before anything was read from the world (`PLAN_INVALID`) or after (`PLAN_STALE`). */
export type SavedPlanReason =
  /** Not JSON, or not a saved plan. */
  | "MALFORMED"
  /** A saved plan of another format version. */
  | "VERSION"
  /** The file could not be read. */
  | "UNREADABLE"
  /** Past its `expiresAtMs`. */
  | "EXPIRED"
  /** The policy is not the one the plan was made from. */
  | "POLICY_CHANGED"
  /** An action's guard no longer holds. */
  | "GUARD_FAILED";

/** A saved plan was refused; `reason` says why, the message what changed, the hint what to do. Nothing was done. */
export class SavedPlanError extends LanekeeperError<CoordinatorErrorCode> {
  readonly reason: SavedPlanReason;

  constructor(code: "PLAN_INVALID" | "PLAN_STALE", reason: SavedPlanReason, message: string, planFile: string) {
    super(code, `${message} (${reason})`, {
      hint: `nothing was changed; run lanekeeper plan --out ${planFile} again, review it, and apply the new file`,
      details: { reason },
    });
    this.reason = reason;
  }
}

/** The digest `plan --out` records and `apply` compares: SHA-256 over the canonical JSON of the parsed policy. */
export function policyDigest(policy: Policy): string {
  return `sha256:${createHash("sha256").update(canonicalJson(policy)).digest("hex")}`;
}

/** What {@link makeSavedPlan} needs. */
export interface SavedPlanInput {
  readonly planId: string;
  readonly actions: readonly Action[];
  readonly policy: Policy;
  readonly policyPath: string;
  readonly nowMs: number;
  /** @default DEFAULT_SAVED_PLAN_TTL_MS */
  readonly ttlMs?: number;
}

/** The saved form of a plan. */
export function makeSavedPlan(input: SavedPlanInput): SavedPlan {
  const expiresAtMs = input.nowMs + (input.ttlMs ?? DEFAULT_SAVED_PLAN_TTL_MS);
  const counts: Record<string, number> = {};
  for (const a of input.actions) counts[a.kind] = (counts[a.kind] ?? 0) + 1;
  // A JSON round trip drops undefined members, as the file will.
  const actions = JSON.parse(JSON.stringify(input.actions)) as SavedPlan["actions"];
  return {
    format: SAVED_PLAN_FORMAT,
    version: SAVED_PLAN_VERSION,
    planId: input.planId,
    createdAt: new Date(input.nowMs).toISOString(),
    createdAtMs: input.nowMs,
    expiresAt: new Date(expiresAtMs).toISOString(),
    expiresAtMs,
    policy: { path: input.policyPath, digest: policyDigest(input.policy) },
    actions,
    counts,
  };
}

/** The file text of a saved plan (pretty JSON, so it can be reviewed and diffed). */
export function formatSavedPlan(saved: SavedPlan): string {
  return `${JSON.stringify(savedPlanSchema.parse(saved), null, 2)}\n`;
}

/**
 * Parse and validate a plan file's text; refuses anything but a version-1 saved plan (`PLAN_INVALID`). `path`
 * names the file in messages, `given` (default `path`) in the hint, as the operator typed it.
 */
export function parseSavedPlan(text: string, path: string, given: string = path): SavedPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SavedPlanError("PLAN_INVALID", "MALFORMED", `${path} is not JSON: ${(err as Error).message}`, given);
  }
  const head = raw as { format?: unknown; version?: unknown } | null;
  if (typeof head === "object" && head !== null && head.format === SAVED_PLAN_FORMAT && head.version !== SAVED_PLAN_VERSION) {
    throw new SavedPlanError(
      "PLAN_INVALID",
      "VERSION",
      `${path} is a saved plan of format version ${JSON.stringify(head.version)}; this lanekeeper reads version ${SAVED_PLAN_VERSION} only`,
      given,
    );
  }
  const r = savedPlanSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new SavedPlanError("PLAN_INVALID", "MALFORMED", `${path} is not a valid saved plan: ${first.join("; ")}`, given);
  }
  const ids = new Set<string>();
  for (const a of r.data.actions) {
    if (ids.has(a.id)) throw new SavedPlanError("PLAN_INVALID", "MALFORMED", `${path} holds action ${a.id} twice`, given);
    ids.add(a.id);
  }
  return r.data;
}

/** The actions of a validated saved plan, as the apply engine takes them. */
export function savedActions(saved: SavedPlan): readonly Action[] {
  // The schema mirrors Action field by field (see _everyActionFits); only optional-vs-undefined members differ.
  return saved.actions as unknown as readonly Action[];
}

/**
 * Refuse a saved plan that no longer applies before looking at the world: expired, or made from another policy
 * (`PLAN_STALE`). Guards are checked against fresh observations afterwards.
 */
export function checkSavedPlanCurrent(saved: SavedPlan, current: { readonly policy: Policy; readonly nowMs: number; readonly path: string }): void {
  if (current.nowMs >= saved.expiresAtMs) {
    throw new SavedPlanError("PLAN_STALE", "EXPIRED", `the plan ${saved.planId} expired at ${saved.expiresAt}`, current.path);
  }
  const digest = policyDigest(current.policy);
  if (digest !== saved.policy.digest) {
    throw new SavedPlanError(
      "PLAN_STALE",
      "POLICY_CHANGED",
      `the policy changed since the plan ${saved.planId} was made (it was made from ${saved.policy.path}, ${saved.policy.digest}; the policy now is ${digest})`,
      current.path,
    );
  }
}
