/**
 * The crash journal of multi-step lane operations: `<stateDir>/journal/<laneId>.json`, one entry per lane (lane
 * operations are serialized per lane), rewritten atomically (temp file, fsync, rename, fsync of the directory)
 * after every step. On start the agent reads what is left and finishes or rolls back each interrupted operation
 * (`LaneManager.recover`). No secret is ever journaled: a step that needs one is rolled back or marked
 * needs-attention instead of being retried.
 */
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { validateLaneId } from "@lanekeeper/shared";
import { readSmallFile, unlinkDurable, writeFileAtomic } from "../atomic-file.js";
import { AgentStateError } from "../errors.js";
import type { BackendName, ModeName } from "./lane-marker.js";
import { MAX_STATE_FILE_BYTES } from "../limits.js";

/** Steps of a create, in order. */
export const CREATE_STEPS = ["begin", "dir", "runtime", "configured", "started"] as const;
/** Steps of a remove, in order. */
export const REMOVE_STEPS = ["begin", "stopped", "deregistered", "runtime-removed", "dir-removed"] as const;
/** Steps of arming an ephemeral lane. */
export const ARM_STEPS = ["begin", "armed", "started"] as const;
/**
 * Steps of an in-place runner upgrade: checks passed (`begin`), the lane stopped, the new tree complete and synced
 * beside the old one (`staged`: `runner.next`), the old tree moved aside (`swapping`: `runner.old`, no `runner/`),
 * the new tree in place (`swapped`), `lane.json` re-signed with the new version (`recorded`: the commit point).
 */
export const UPGRADE_STEPS = ["begin", "stopped", "staged", "swapping", "swapped", "recorded"] as const;

/** A create step. */
export type CreateStep = (typeof CREATE_STEPS)[number];
/** A remove step. */
export type RemoveStep = (typeof REMOVE_STEPS)[number];
/** An arm step. */
export type ArmStep = (typeof ARM_STEPS)[number];
/** An upgrade step. */
export type UpgradeStep = (typeof UPGRADE_STEPS)[number];

/** What recovery needs to settle an interrupted upgrade deterministically. */
export interface UpgradeJournal {
  /** The version `lane.json` named before the upgrade. */
  readonly from: string;
  /** The version being installed; once `lane.json` names it, the upgrade is committed. */
  readonly to: string;
  /** Whether the lane was meant to run before the upgrade stopped it (it is started again either way it ends). */
  readonly wasRunning: boolean;
}

/** One interrupted (or running) operation. */
export type JournalEntry =
  | (JournalBase & { readonly op: "create"; readonly step: CreateStep })
  | (JournalBase & { readonly op: "remove"; readonly step: RemoveStep })
  | (JournalBase & { readonly op: "arm"; readonly step: ArmStep })
  | (JournalBase & UpgradeJournal & { readonly op: "upgrade"; readonly step: UpgradeStep });

interface JournalBase {
  readonly laneId: string;
  readonly operationId: string;
  readonly backend: BackendName;
  readonly mode: ModeName;
  readonly startedAtMs: number;
  /** A child (`config.sh`) that was running, identified by pid and start time against pid reuse. */
  readonly child?: { readonly pid: number; readonly startTime: number };
}

/**
 * Called after every journal write with the op and step (`<step>+child` for a journaled `config.sh` child). A
 * hook that never settles freezes the operation right there, which is how in-process tests model a crash.
 */
export type CrashHook = (op: string, step: string) => void | Promise<void>;

/**
 * Test hook: `LANEKEEPER_TEST_CRASH_AT=<op>:<step>` makes the process SIGKILL itself right after that step was
 * journaled, so tests can prove recovery from a crash at every step; `<op>:<step>+child` fires when the pid of a
 * `config.sh` child was journaled (a crash while the runner is being configured or removed). Unset in production.
 */
export function crashHookFromEnv(env: NodeJS.ProcessEnv = process.env): CrashHook {
  const at = env.LANEKEEPER_TEST_CRASH_AT;
  if (!at) return () => undefined;
  return (op, step) => {
    if (`${op}:${step}` === at) process.kill(process.pid, "SIGKILL");
  };
}

/** The journal directory of one agent. */
export class OperationJournal {
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly crashHook: CrashHook = crashHookFromEnv(),
  ) {
    this.dir = join(stateDir, "journal");
  }

  private path(laneId: string): string {
    return join(this.dir, `${validateLaneId(laneId)}.json`);
  }

  /** Record `entry` durably (and fire the crash hook for its step, or `<step>+<point>`). */
  async write(entry: JournalEntry, point?: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path(entry.laneId), `${JSON.stringify(entry)}\n`, 0o600);
    await this.crashHook(entry.op, point === undefined ? entry.step : `${entry.step}+${point}`);
  }

  /** The entry of a lane, if an operation is in flight or was interrupted. */
  async get(laneId: string): Promise<JournalEntry | undefined> {
    const buf = await readSmallFile(this.path(laneId), MAX_STATE_FILE_BYTES);
    if (!buf) return undefined;
    try {
      const v = JSON.parse(buf.toString("utf8")) as JournalEntry;
      const steps: readonly string[] =
        v.op === "create" ? CREATE_STEPS : v.op === "remove" ? REMOVE_STEPS : v.op === "arm" ? ARM_STEPS : v.op === "upgrade" ? UPGRADE_STEPS : [];
      if (v.laneId !== laneId || !steps.includes(v.step)) throw new Error("bad entry");
      if (v.op === "upgrade" && (typeof v.from !== "string" || typeof v.to !== "string" || typeof v.wasRunning !== "boolean")) throw new Error("bad entry");
      return v;
    } catch (err) {
      throw new AgentStateError(`journal entry ${this.path(laneId)} is unreadable`, { cause: err });
    }
  }

  /** The operation finished (or was resolved by recovery). */
  async clear(laneId: string): Promise<void> {
    await unlinkDurable(this.path(laneId));
  }

  /** Lane ids with a journal entry. */
  async pending(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries.filter((e) => /^[a-z0-9][a-z0-9-]{0,62}\.json$/.test(e)).map((e) => e.slice(0, -5));
  }
}
