/**
 * The agent's own per-lane state in `<stateDir>/lanes/<laneId>.json` (0600, atomic writes): what the lane should
 * be doing (desired running or stopped), what health found, restart history, draining, and the attention note.
 * The lane's identity lives in the signed `lane.json`; this file holds only what changes.
 */
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { validateLaneId } from "@lanekeeper/shared";
import { readSmallFile, unlinkDurable, writeFileAtomic } from "../atomic-file.js";
import { AgentStateError } from "../errors.js";
import { MAX_STATE_FILE_BYTES } from "../limits.js";

/** Lane states as stored (mirrors the protobuf `LaneState`). */
export type LaneStateName = "creating" | "running" | "stopped" | "failed" | "needs-attention" | "removing" | "idle-unarmed";
/** Health as stored (mirrors the protobuf `Health`). */
export type HealthName = "healthy" | "restarting" | "crash-loop" | "registration-deleted" | "unknown";

/** One lane's mutable state. */
export interface LaneState {
  readonly laneId: string;
  /** Whether the agent keeps the lane running (health restarts) or leaves it stopped. */
  readonly desired: "running" | "stopped";
  readonly state: LaneStateName;
  readonly stateSinceMs: number;
  readonly health: HealthName;
  readonly draining: boolean;
  /** When health restarts happened (ms), pruned to the window. */
  readonly restarts: readonly number[];
  /** Earliest time the next health restart may start (backoff). */
  readonly nextRestartAtMs: number;
  /** Stable code when the lane needs attention (CRASH_LOOP, REGISTRATION_DELETED, ...). */
  readonly attentionReason: string;
  /** Exact commands for the operator. */
  readonly recoveryNote: string;
  readonly lastExitCode: number;
  readonly runnerId: number;
  readonly runnerName: string;
  /** The hold reason last written to the audit log (to audit local holds once). */
  readonly auditedHold: string | null;
}

/** A fresh state for a lane being created. */
export function initialLaneState(laneId: string, nowMs: number): LaneState {
  return {
    laneId,
    desired: "stopped",
    state: "creating",
    stateSinceMs: nowMs,
    health: "unknown",
    draining: false,
    restarts: [],
    nextRestartAtMs: 0,
    attentionReason: "",
    recoveryNote: "",
    lastExitCode: 0,
    runnerId: 0,
    runnerName: "",
    auditedHold: null,
  };
}

const STATES = new Set(["creating", "running", "stopped", "failed", "needs-attention", "removing", "idle-unarmed"]);
const HEALTHS = new Set(["healthy", "restarting", "crash-loop", "registration-deleted", "unknown"]);

function parseState(text: string, laneId: string): LaneState {
  const v = JSON.parse(text) as Record<string, unknown>;
  const ok =
    typeof v === "object" &&
    v !== null &&
    v.laneId === laneId &&
    (v.desired === "running" || v.desired === "stopped") &&
    STATES.has(v.state as string) &&
    HEALTHS.has(v.health as string) &&
    typeof v.draining === "boolean" &&
    Array.isArray(v.restarts) &&
    v.restarts.every((n) => typeof n === "number") &&
    ["stateSinceMs", "nextRestartAtMs", "lastExitCode", "runnerId"].every((k) => typeof v[k] === "number") &&
    ["attentionReason", "recoveryNote", "runnerName"].every((k) => typeof v[k] === "string") &&
    (v.auditedHold === null || typeof v.auditedHold === "string");
  if (!ok) throw new AgentStateError(`lane state of ${laneId} is invalid`);
  return v as unknown as LaneState;
}

/** Lane states on disk, cached in memory (the agent is the only writer). */
export class LaneStateStore {
  private readonly cache = new Map<string, LaneState>();
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "lanes");
  }

  private path(laneId: string): string {
    return join(this.dir, `${validateLaneId(laneId)}.json`);
  }

  /** The state of a lane, or `undefined` when none was saved. */
  async get(laneId: string): Promise<LaneState | undefined> {
    const hit = this.cache.get(laneId);
    if (hit) return hit;
    const buf = await readSmallFile(this.path(laneId), MAX_STATE_FILE_BYTES);
    if (!buf) return undefined;
    let s: LaneState;
    try {
      s = parseState(buf.toString("utf8"), laneId);
    } catch (err) {
      throw new AgentStateError(`lane state file ${this.path(laneId)} is unreadable; move it away to reset the lane's health history`, {
        cause: err,
      });
    }
    this.cache.set(laneId, s);
    return s;
  }

  /** Save a lane's state durably. */
  async put(s: LaneState): Promise<LaneState> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path(s.laneId), `${JSON.stringify(s)}\n`, 0o600);
    this.cache.set(s.laneId, s);
    return s;
  }

  /** Apply `patch` to the saved state (which must exist) and save. */
  async update(laneId: string, patch: Partial<Omit<LaneState, "laneId">>): Promise<LaneState> {
    const cur = (await this.get(laneId)) ?? initialLaneState(laneId, Date.now());
    return this.put({ ...cur, ...patch, laneId });
  }

  /** Forget a lane. */
  async delete(laneId: string): Promise<void> {
    this.cache.delete(laneId);
    await unlinkDurable(this.path(laneId));
  }

  /** Ids of every lane with saved state. */
  async ids(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries.filter((e) => /^[a-z0-9][a-z0-9-]{0,62}\.json$/.test(e)).map((e) => e.slice(0, -5));
  }
}
