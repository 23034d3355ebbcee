import { InvalidArgumentError } from "commander";
import { backendToJSON, healthToJSON, laneModeToJSON, laneStateToJSON, LanekeeperError, type AuditRecord, type LaneObservation } from "@lanekeeper/shared";
import { readAuditStream } from "../audit/audit-stream.js";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import { observeWorld, type WorldObservation } from "../context/observe-world.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import type { GitHubRunner } from "../github/github-types.js";
import { classify, type Classification, type LaneView } from "../observe/classify.js";
import type { LaneRecordState, StoredLaneRecord } from "../observe/lane-record.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { formatDuration } from "./duration.js";
import { ExitCode, exitCodeForObservedCode } from "./exit-codes.js";
import { renderTable } from "./render-table.js";
import { laneStatuses, type LaneStatus } from "./status-command.js";

/** `lanes list --state` values: a record state, `none` (no record), or a classification. */
export const LANE_STATE_FILTERS = Object.freeze([
  "creating",
  "active",
  "draining",
  "removing",
  "needs-attention",
  "orphaned",
  "none",
  "managed",
] as const satisfies readonly (LaneRecordState | "none" | "managed")[]);

/** One `--state` filter value. */
export type LaneStateFilter = (typeof LANE_STATE_FILTERS)[number];

/** Parse `--state`: one of {@link LANE_STATE_FILTERS} (a usage error naming them otherwise). */
export function parseLaneStateFilter(v: string): LaneStateFilter {
  if (!(LANE_STATE_FILTERS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${LANE_STATE_FILTERS.join(", ")}`);
  return v as LaneStateFilter;
}

/** How many of the newest LK_AUDIT records `lanes show` searches for the lane's. */
export const LANE_SHOW_AUDIT_SCAN = 2_000;
/** Default of `lanes show --audit`. */
export const LANE_SHOW_AUDIT_DEFAULT = 10;

/** Options of `lanekeeper lanes list`. */
export interface LanesListOptions {
  readonly policy?: string;
  readonly json?: boolean;
  readonly inventoryWait?: number;
  readonly timeout?: number;
  readonly scope?: string;
  readonly pool?: string;
  readonly host?: string;
  readonly state?: LaneStateFilter;
}

/** Options of `lanekeeper lanes show`. */
export interface LanesShowOptions {
  readonly policy?: string;
  readonly json?: boolean;
  readonly inventoryWait?: number;
  readonly timeout?: number;
  /** How many of the lane's audit records to show. */
  readonly audit?: number;
}

/** `lanes show` was asked about a lane no record, registration or host knows. */
export class UnknownLaneError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(laneId: string) {
    super("LANE_NOT_FOUND", `no lane ${laneId} is known: no coordinator record, no GitHub registration, no host reports it`, {
      hint: "`lanekeeper lanes list` lists the lanes this coordinator knows (a removed lane's id is never reused; `lanekeeper audit tail` shows its history)",
    });
  }
}

/** One observation of the fleet, classified: the same layer `status` and `plan` read through. */
async function observeLanes(ctx: CoordinatorContext, inventoryWaitMs: number | undefined, onlyHosts?: readonly string[]): Promise<{ world: WorldObservation; cls: Classification }> {
  await ctx.waitForInventories(inventoryWaitMs ?? 6_000, onlyHosts);
  const world = await observeWorld({ policy: ctx.policy, github: ctx.github, store: ctx.store, inventory: ctx.inventory, clock: ctx.clock, leases: ctx.leases });
  return { world, cls: classify(ctx.policy, world.observed, world.records, { nowMs: world.observedAtMs }) };
}

/** The exit code of an observation: OK, or that of the first scope GitHub could not list. */
function observedExitCode(world: WorldObservation): ExitCode {
  const first = [...world.observed.scopes.values()].find((s) => s.status !== "ok");
  return first === undefined ? ExitCode.OK : exitCodeForObservedCode(first.code);
}

/** Whether a lane passes `--state`: its record's state, `none` without a record, or its classification. */
function matchesState(l: LaneStatus, state: LaneStateFilter): boolean {
  return l.record === state || l.class === state;
}

/**
 * `lanekeeper lanes list [--scope s] [--pool p] [--host h] [--state st] [--json]`: the lanes `status` shows,
 * filtered. Reads only. Exit 0, or that of a scope GitHub could not list (its lanes' GitHub view is `unknown`).
 */
export async function runLanesList(opts: LanesListOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  return withCoordinator(opts, io, deps, async (ctx) => {
    const { world, cls } = await observeLanes(ctx, opts.inventoryWait, opts.host === undefined ? undefined : [opts.host]);
    const lanes = laneStatuses(cls.lanes).filter(
      (l) =>
        (opts.scope === undefined || l.scope === opts.scope) &&
        (opts.pool === undefined || l.pool === opts.pool) &&
        (opts.host === undefined || l.hostId === opts.host) &&
        (opts.state === undefined || matchesState(l, opts.state)),
    );
    const filters = { scope: opts.scope ?? null, pool: opts.pool ?? null, host: opts.host ?? null, state: opts.state ?? null };
    if (opts.json === true) {
      io.out(`${JSON.stringify({ observedAt: new Date(world.observedAtMs).toISOString(), filters, lanes }, null, 2)}\n`);
    } else if (lanes.length === 0) {
      const any = Object.values(filters).some((v) => v !== null);
      io.out(any ? "No lane matches the filters.\n" : "No lanes.\n");
    } else {
      io.out(
        renderTable(
          ["LANE", "HOST", "SCOPE", "POOL", "RECORD", "GITHUB", "ON HOST", "JOB", "CLASS"],
          lanes.map((l) => [l.laneId, l.hostId, l.scope, l.pool, l.record, l.github, `${l.host}${l.held ? ",held" : ""}`, l.jobRunning ? "running" : "", l.class]),
        ),
      );
    }
    return observedExitCode(world);
  });
}

/** The host's view of a lane, as `lanes show` prints it. */
export interface HostLaneView {
  readonly state: string;
  readonly health: string;
  readonly jobRunning: boolean;
  readonly held: boolean;
  readonly holdReason: string | null;
  readonly draining: boolean;
  readonly backend: string;
  readonly mode: string;
  readonly runtimeName: string;
  readonly runnerId: number | null;
  readonly runnerName: string | null;
  readonly runnerVersion: string | null;
  readonly image: string | null;
  readonly labels: readonly string[];
  readonly restartsInWindow: number;
  readonly attentionReason: string | null;
  readonly recoveryNote: string | null;
  readonly stateSince: string | null;
}

const enumName = (s: string, prefix: string): string => s.replace(prefix, "").toLowerCase();
const orNull = (s: string): string | null => (s === "" ? null : s);

function hostLaneView(h: LaneObservation): HostLaneView {
  return {
    state: enumName(laneStateToJSON(h.state), "LANE_STATE_"),
    health: enumName(healthToJSON(h.health), "HEALTH_"),
    jobRunning: h.jobRunning,
    held: h.held,
    holdReason: orNull(h.holdReason),
    draining: h.draining,
    backend: enumName(backendToJSON(h.backend), "BACKEND_"),
    mode: enumName(laneModeToJSON(h.mode), "LANE_MODE_"),
    runtimeName: h.runtimeName,
    runnerId: h.runnerId === 0 ? null : h.runnerId,
    runnerName: orNull(h.runnerName),
    runnerVersion: orNull(h.runnerVersion),
    image: orNull(h.image),
    labels: h.labels,
    restartsInWindow: h.restartsInWindow,
    attentionReason: orNull(h.attentionReason),
    recoveryNote: orNull(h.recoveryNote),
    stateSince: h.stateSinceMs === 0 ? null : new Date(h.stateSinceMs).toISOString(),
  };
}

/** Everything `lanes show` reports about one lane (its `--json` output). */
export interface LaneDetails {
  readonly laneId: string;
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  readonly observedAt: string;
  /** The one-line summary `status` and `lanes list` print. */
  readonly summary: LaneStatus;
  readonly certainty: string;
  readonly orphanKind: string | null;
  readonly pending: boolean;
  readonly record: StoredLaneRecord | null;
  readonly github: { readonly scope: string; readonly listed: boolean; readonly runner: GitHubRunner | null; readonly extraRegistrations: readonly GitHubRunner[] };
  readonly host: { readonly hostId: string; readonly inventoryAgeMs: number | null; readonly agentVersion: string | null; readonly lane: HostLaneView | null };
  /** What to do about the lane, when anything: the record's note, the classification's, or the host's. */
  readonly recoveryNote: string | null;
  /** The lane's newest audit records in the LK_AUDIT stream (coordinators and agents), oldest first. */
  readonly audit: readonly (AuditRecord & { readonly subject: string })[];
}

function laneDetails(v: LaneView, world: WorldObservation, audit: LaneDetails["audit"]): LaneDetails {
  const summary = laneStatuses([v])[0]!;
  const inv = world.observed.inventory.hosts.get(v.hostId);
  return {
    laneId: v.laneId,
    scope: v.scope,
    pool: v.pool,
    hostId: v.hostId,
    observedAt: new Date(world.observedAtMs).toISOString(),
    summary,
    certainty: v.certainty,
    orphanKind: v.orphanKind ?? null,
    pending: v.pending,
    record: v.record ?? null,
    github: { scope: v.scope, listed: v.scopeKnown, runner: v.registration ?? null, extraRegistrations: v.extraRegistrations },
    host: {
      hostId: v.hostId,
      inventoryAgeMs: inv === undefined ? null : world.observedAtMs - inv.receivedAtMs,
      agentVersion: inv?.agentVersion ?? null,
      lane: v.hostLane === undefined ? null : hostLaneView(v.hostLane),
    },
    recoveryNote: summary.attention,
    audit,
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The human rendering of {@link LaneDetails}. */
export function laneDetailsToText(d: LaneDetails): string {
  const out: string[] = [];
  const row = (k: string, v: string): void => void out.push(`  ${k.padEnd(14)}${v}\n`);
  out.push(`Lane ${d.laneId}: ${d.scope} / ${d.pool} on ${d.hostId}; ${d.summary.class}${d.certainty === "verified" ? "" : ` (${d.certainty})`}${d.orphanKind === null ? "" : `, ${d.orphanKind}`}${d.pending ? ", being created" : ""}\n`);
  out.push("\nCoordinator record\n");
  if (d.record === null) row("state", "none (no record: lanekeeper does not act on this lane)");
  else {
    row("state", `${d.record.state}${d.record.drainReason === undefined ? "" : ` (${d.record.drainReason})`}`);
    row("runner id", d.record.runnerId === undefined ? "-" : String(d.record.runnerId));
    row("created", iso(d.record.createdAtMs));
    row("updated", iso(d.record.updatedAtMs));
    if (d.record.operationId !== undefined) row("operation", d.record.operationId);
  }
  out.push(`\nGitHub (${d.github.scope})\n`);
  const r = d.github.runner;
  if (r === null) row("runner", d.github.listed ? "absent: no registration carries this lane's labels" : "unknown: the scope could not be listed");
  else {
    row("runner", `#${r.id} ${r.name}`);
    row("status", `${r.status}${r.busy ? ", busy" : ", idle"}${r.ephemeral === true ? ", ephemeral" : ""}`);
    row("labels", r.labels.map((l) => l.name).join(", "));
  }
  for (const x of d.github.extraRegistrations) row("also", `#${x.id} ${x.name} (${x.status}) carries this lane's labels`);
  out.push(`\nHost ${d.host.hostId}${d.host.inventoryAgeMs === null ? " (no inventory)" : ` (inventory ${formatDuration(d.host.inventoryAgeMs)} old, agent ${d.host.agentVersion ?? "?"})`}\n`);
  const h = d.host.lane;
  if (h === null) row("lane", d.host.inventoryAgeMs === null ? "unknown: no inventory from this host" : "absent: the host reports no such lane");
  else {
    row("state", `${h.state}${h.draining ? ", draining" : ""}${h.stateSince === null ? "" : ` since ${h.stateSince}`}`);
    row("health", `${h.health}${h.restartsInWindow > 0 ? `, ${h.restartsInWindow} restart(s) in window` : ""}${h.attentionReason === null ? "" : ` (${h.attentionReason})`}`);
    row("job", h.jobRunning ? "running (Runner.Worker)" : "none");
    if (h.held) row("hold", h.holdReason ?? "held");
    row("runtime", `${h.runtimeName} (${h.backend}, ${h.mode})`);
    row("runner", [h.runnerName, h.runnerId === null ? null : `#${h.runnerId}`, h.runnerVersion, h.image].filter((x) => x !== null).join(" ") || "-");
  }
  if (d.recoveryNote !== null) out.push(`\nRecovery note\n  ${d.recoveryNote}\n`);
  out.push(`\nRecent audit (${d.audit.length}, oldest first)\n`);
  if (d.audit.length > 0) {
    out.push(
      renderTable(
        ["SEQ", "TIME", "SOURCE", "ACTION", "PHASE", "CODE", "MESSAGE"],
        d.audit.map((a) => [String(a.seq), iso(a.at), a.source, a.action, a.phase, a.reasonCode ?? "", (a.message ?? "").slice(0, 120)]),
      ),
    );
  }
  return out.join("");
}

/**
 * `lanekeeper lanes show <lane> [--audit n] [--json]`: one lane from every side: the coordinator record, GitHub's
 * registration, the host's view from its signed inventory, the recovery note, and its newest audit records.
 * Reads only. An unknown lane is `LANE_NOT_FOUND` (exit 6).
 */
export async function runLanesShow(laneId: string, opts: LanesShowOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  return withCoordinator(opts, io, deps, async (ctx) => {
    // Only the lane's host matters (an unknown lane waits for every host, then is reported as unknown).
    const rec = await ctx.store.get(laneId).catch(() => undefined);
    const { world, cls } = await observeLanes(ctx, opts.inventoryWait, rec === undefined ? undefined : [rec.hostId]);
    const v = cls.lanes.find((l) => l.laneId === laneId);
    if (v === undefined) throw new UnknownLaneError(laneId);
    const want = opts.audit ?? LANE_SHOW_AUDIT_DEFAULT;
    const audit =
      want === 0
        ? []
        : (await readAuditStream(ctx.jsm, { limit: LANE_SHOW_AUDIT_SCAN, newest: true }))
            .filter((r) => r.record.laneId === laneId)
            .slice(-want)
            .map((r) => ({ ...r.record, subject: r.subject }));
    const d = laneDetails(v, world, audit);
    io.out(opts.json === true ? `${JSON.stringify(d, null, 2)}\n` : laneDetailsToText(d));
    return observedExitCode(world);
  });
}
