import { healthToJSON, laneStateToJSON } from "@lanekeeper/shared";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import { observeWorld, planFromWorld } from "../context/observe-world.js";
import { policyUsesScaling } from "../demand/demand-scopes.js";
import { KvJobStore } from "../demand/kv-job-store.js";
import { classify, type LaneView } from "../observe/classify.js";
import type { CliIo } from "./cli-io.js";
import { withCoordinator, type CoordinatorCliDeps } from "./coordinator-session.js";
import { formatDuration } from "./duration.js";
import { ExitCode, exitCodeForObservedCode } from "./exit-codes.js";
import { renderScalingTable } from "./render-scaling.js";
import { renderTable } from "./render-table.js";
import { policyRevisionLines, policyRevisionView, readLeaderRecord } from "../serve/policy-revision.js";
import { runStatusWatch } from "./status-watch.js";

/** Options of `lanekeeper status`. */
export interface StatusCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  readonly inventoryWait?: number;
  /** Re-render every `interval` until Ctrl-C (see `status-watch.ts`). */
  readonly watch?: boolean;
  /** `--watch`: time between rounds (ms). */
  readonly interval?: number;
  /** The command's deadline (ms); with `--watch`, each round's. */
  readonly timeout?: number;
}

/** One lane as `status` shows it: the three markers side by side. */
export interface LaneStatus {
  readonly laneId: string;
  readonly hostId: string;
  readonly scope: string;
  readonly pool: string;
  /** `managed`, `orphaned`, `needs-attention` (classification). */
  readonly class: string;
  /** The coordinator record's state, or `none`. */
  readonly record: string;
  readonly runnerId: number | null;
  /** `online`, `offline`, `busy`, `draining` (lk-draining label), or `absent`/`unknown`. */
  readonly github: string;
  /** The host's lane state (`running`, `stopped`, ...), or `absent`/`unknown`. */
  readonly host: string;
  readonly health: string;
  readonly jobRunning: boolean;
  readonly held: boolean;
  /** The recovery note or disagreement, when there is one. */
  readonly attention: string | null;
}

function githubState(v: LaneView): string {
  const g = v.registration;
  if (g === undefined) return v.scopeKnown ? "absent" : "unknown";
  const draining = g.labels.some((l) => l.name === "lk-draining");
  return `${g.busy ? "busy" : g.status}${draining ? ",draining" : ""}`;
}

function hostState(v: LaneView): string {
  const h = v.hostLane;
  if (h === undefined) return v.hostKnown ? "absent" : "unknown";
  const s = laneStateToJSON(h.state).replace(/^LANE_STATE_/, "").toLowerCase();
  return `${s}${h.draining ? ",draining" : ""}`;
}

/** The status of every lane, from a fresh observation. */
export function laneStatuses(lanes: readonly LaneView[]): LaneStatus[] {
  return lanes.map((v) => ({
    laneId: v.laneId,
    hostId: v.hostId,
    scope: v.scope,
    pool: v.pool,
    class: v.class,
    record: v.record?.state ?? "none",
    runnerId: v.registration?.id ?? v.record?.runnerId ?? null,
    github: githubState(v),
    host: hostState(v),
    health: v.hostLane === undefined ? "" : healthToJSON(v.hostLane.health).replace(/^HEALTH_/, "").toLowerCase(),
    jobRunning: v.hostLane?.jobRunning === true,
    held: v.hostLane?.held === true,
    attention: v.record?.attention?.message ?? v.attention?.message ?? (v.hostLane?.recoveryNote === "" ? undefined : v.hostLane?.recoveryNote) ?? null,
  }));
}

/**
 * `lanekeeper status`: every lane by state from the three markers (coordinator records, GitHub, the agents'
 * inventories), the hosts' inventories, unmanaged and foreign runners, and the GitHub rate limit. Reads only.
 * With `--watch`, the same every `--interval` until Ctrl-C ({@link runStatusWatch}).
 */
export async function runStatus(opts: StatusCommandOptions, io: CliIo, deps: CoordinatorCliDeps = {}): Promise<ExitCode> {
  if (opts.watch === true) return runStatusWatch(opts, io, deps, statusRound);
  return withCoordinator(opts, io, deps, (ctx) => statusRound(ctx, opts, io));
}

/**
 * One observation of the fleet, printed: what `status` prints, and each round of `status --watch` (whose JSON is
 * one line per round: `compactJson`).
 */
export async function statusRound(ctx: CoordinatorContext, opts: StatusCommandOptions, io: CliIo, compactJson = false): Promise<ExitCode> {
  await ctx.waitForInventories(opts.inventoryWait ?? 6_000);
  // Queue-driven pools are shown from the shared job store (read only: no REST pass, which `plan` may make).
  const jobs = ctx.js !== undefined && policyUsesScaling(ctx.policy) ? await KvJobStore.open(ctx.js, { replicas: ctx.policy.coordinator.jetstreamReplicas }) : undefined;
  const world = await observeWorld({
    policy: ctx.policy,
    github: ctx.github,
    store: ctx.store,
    inventory: ctx.inventory,
    clock: ctx.clock,
    leases: ctx.leases,
    ...(jobs === undefined ? {} : { jobs }),
  });
  const now = world.observedAtMs;
  const cls = classify(ctx.policy, world.observed, world.records, { nowMs: now });
  const lanes = laneStatuses(cls.lanes);
  const byState: Record<string, number> = {};
  for (const l of lanes) byState[l.record] = (byState[l.record] ?? 0) + 1;
  const hosts = Object.keys(ctx.policy.hosts)
    .sort()
    .map((hostId) => {
      const inv = world.observed.inventory.hosts.get(hostId);
      return {
        hostId,
        optIn: ctx.policy.hosts[hostId]?.optIn === true,
        inventoryAgeMs: inv === undefined ? null : now - inv.receivedAtMs,
        controlEnabled: inv?.controlEnabled ?? null,
        agentVersion: inv?.agentVersion ?? null,
        lanes: inv?.lanes.length ?? null,
        unmanaged: inv?.unmanaged.length ?? null,
      };
    });
  const unavailable = [...world.observed.scopes.values()].flatMap((s) => (s.status === "ok" ? [] : [s]));
  const rateLimit = ctx.github.rateLimit();
  // Which policy the leading `serve` runs, and whether this file is the same (docs/cluster.md, "Policy reload").
  const policy = ctx.js === undefined ? undefined : policyRevisionView(ctx.policy, await readLeaderRecord(ctx.js));
  // Per queue-driven pool: queued, running, idle, wanted and why, from the same pure rule `plan` uses (nothing is
  // applied). Fixed `count` pools have no such figures, and without any scaling pool nothing is planned here.
  const pools = policyUsesScaling(ctx.policy)
    ? planFromWorld(ctx.policy, world).groups.filter((g) => g.scaling !== undefined)
    : [];
  if (opts.json === true) {
    io.out(
      `${JSON.stringify(
        {
          observedAt: new Date(now).toISOString(),
          byState,
          lanes,
          hosts,
          unmanaged: cls.unmanaged.map((r) => ({ scope: r.scope, runnerId: r.runner.id, name: r.runner.name })),
          foreign: cls.foreign.map((r) => ({ scope: r.scope, runnerId: r.runner.id, name: r.runner.name, reason: r.reason })),
          hostUnmanaged: cls.hostUnmanaged.map((u) => ({ hostId: u.hostId, kind: u.runner.kind, name: u.runner.name, reason: u.runner.reason })),
          scopesUnavailable: unavailable.map((s) => ({ scope: s.scope, code: s.code, message: s.message })),
          pools: pools.map((g) => ({ scope: g.scope, pool: g.pool, current: g.current, ...g.scaling })),
          rateLimit,
          ...(policy === undefined ? {} : { policy }),
        },
        null,
        compactJson ? undefined : 2,
      )}\n`,
    );
  } else {
    const out: string[] = [];
    out.push(`Lanes: ${lanes.length}${lanes.length === 0 ? "" : ` (${Object.entries(byState).map(([k, n]) => `${n} ${k}`).join(", ")})`}\n`);
    if (lanes.length > 0) {
      out.push(
        renderTable(
          ["LANE", "HOST", "SCOPE/POOL", "RECORD", "GITHUB", "ON HOST", "JOB", "CLASS"],
          lanes.map((l) => [
            l.laneId,
            l.hostId,
            `${l.scope}/${l.pool}`,
            l.record,
            l.github,
            `${l.host}${l.held ? ",held" : ""}`,
            l.jobRunning ? "running" : "",
            l.class,
          ]),
        ),
      );
    }
    const attention = lanes.filter((l) => l.attention !== null);
    if (attention.length > 0) {
      // The recovery note as written (the same text the failed command printed and `plan` warns with), under the
      // record state it describes, so the three never tell different stories.
      out.push("\nNeeds attention:\n");
      for (const l of attention) out.push(`  ${l.laneId} (record ${l.record}): ${l.attention ?? ""}\n`);
    }
    out.push("\n");
    out.push(
      renderTable(
        ["HOST", "OPT-IN", "INVENTORY", "CONTROL", "LANES", "UNMANAGED", "AGENT"],
        hosts.map((h) => [
          h.hostId,
          h.optIn ? "yes" : "no",
          h.inventoryAgeMs === null ? "none" : `${formatDuration(h.inventoryAgeMs)} ago`,
          h.controlEnabled === null ? "?" : h.controlEnabled ? "enabled" : "observe-only",
          h.lanes === null ? "?" : String(h.lanes),
          h.unmanaged === null ? "?" : String(h.unmanaged),
          h.agentVersion ?? "",
        ]),
      ),
    );
    const scalingTable = renderScalingTable(pools);
    if (scalingTable !== "") out.push(`\nQueue-driven pools:\n${scalingTable}`);
    out.push(`\nUnmanaged on GitHub: ${cls.unmanaged.length}; foreign: ${cls.foreign.length}; unmanaged on hosts: ${cls.hostUnmanaged.length} (never touched)\n`);
    for (const s of unavailable) out.push(`GitHub: ${s.scope} could not be listed (${s.code}): ${s.message}\n`);
    if (rateLimit.remaining !== undefined) {
      out.push(`GitHub rate limit: ${rateLimit.remaining}/${rateLimit.limit ?? "?"} left${rateLimit.reserveActive ? " (reserve active: only removals go out)" : ""}\n`);
    }
    for (const line of policy === undefined ? [] : policyRevisionLines(policy)) out.push(`${line}\n`);
    io.out(out.join(""));
  }
  const first = unavailable[0];
  return first === undefined ? ExitCode.OK : exitCodeForObservedCode(first.code);
}
