/**
 * Settling an in-place runner upgrade that a crash (or a failure inside the upgrade) interrupted. The rule is
 * deterministic and needs no secret: the re-signed `lane.json` is the commit point.
 * - `lane.json` names the new version: the swap is finished (the old tree `runner.old/` is deleted);
 * - otherwise the lane's old runner tree is put back (from whatever a crash left: `runner.next/`, `runner.old/`,
 *   no `runner/`), so the files always match the version `lane.json` names, which is what the coordinator's
 *   rollout and rollback plan from.
 * Either way the lane is then started again if it was meant to run. A lane whose runner files are gone altogether
 * is kept stopped and marked `needs-attention` (`UPGRADE_INCOMPLETE`) with a recovery note.
 */
import { AgentStateError } from "../errors.js";
import { errorMessage, type LaneCore } from "./lane-core.js";
import type { JournalEntry } from "./operation-journal.js";

/** A journaled upgrade. */
export type UpgradeEntry = Extract<JournalEntry, { op: "upgrade" }>;

/** What settling did with the lane's runner files. */
export type SwapSettlement = "rolled-forward" | "rolled-back" | "files-lost";

/** How an interrupted upgrade ended. */
export interface UpgradeRecovery {
  readonly outcome: "rolled-back" | "rolled-forward" | "needs-attention";
  readonly message: string;
  /** The version `lane.json` names afterwards (files agree with it unless `needs-attention`). */
  readonly runnerVersion: string;
}

/** Steps after which the swap may have touched `runner/` (before them, `runner/` is the untouched original). */
const SWAP_STARTED: ReadonlySet<UpgradeEntry["step"]> = new Set(["staged", "swapping", "swapped", "recorded"]);

/**
 * Make a lane's runner files agree with its `lane.json` after an interrupted upgrade. Throws on an I/O error (the
 * journal entry is then kept and the settlement retried); `files-lost` when neither tree is there to keep.
 */
export async function settleRunnerSwap(core: LaneCore, entry: UpgradeEntry): Promise<{ settlement: SwapSettlement; runnerVersion: string }> {
  const dirs = core.opts.dirs;
  const record = await dirs.read(entry.laneId);
  core.records.set(entry.laneId, record);
  const committed = entry.to !== entry.from && record.runnerVersion === entry.to;
  try {
    if (committed) {
      await dirs.discardSpareRunners(entry.laneId);
      return { settlement: "rolled-forward", runnerVersion: record.runnerVersion };
    }
    if (!SWAP_STARTED.has(entry.step)) {
      // runner/ was never moved: only a partial runner.next/ (or a runner.old/ from before this upgrade) can be left.
      if (!(await dirs.swapState(entry.laneId)).runner) throw new AgentStateError(`lane ${entry.laneId} has no runner/ directory`);
      await dirs.discardSpareRunners(entry.laneId);
    } else {
      await dirs.rollBackSwap(entry.laneId);
    }
    return { settlement: "rolled-back", runnerVersion: record.runnerVersion };
  } catch (err) {
    if (err instanceof AgentStateError) return { settlement: "files-lost", runnerVersion: record.runnerVersion };
    throw err;
  }
}

/**
 * Settle an interrupted upgrade (see the module comment), restore the lane's desired state, and clear the journal
 * entry. The caller holds the lane's mutex and writes the audit records.
 */
export async function recoverUpgrade(core: LaneCore, entry: UpgradeEntry): Promise<UpgradeRecovery> {
  const laneId = entry.laneId;
  const what = `upgrade of ${laneId} from ${entry.from || "(unset)"} to ${entry.to}`;
  const { settlement, runnerVersion } = await settleRunnerSwap(core, entry);
  const record = core.records.get(laneId);
  if (settlement === "files-lost" || record === undefined) {
    if (record) {
      await core.setState(laneId, {
        desired: "stopped",
        state: "needs-attention",
        attentionReason: "UPGRADE_INCOMPLETE",
        recoveryNote: core.attention("UPGRADE_INCOMPLETE", record),
      });
    }
    await core.journal.clear(laneId);
    return { outcome: "needs-attention", runnerVersion, message: `${what} was interrupted after step ${entry.step} and its runner files are gone; the lane is kept stopped` };
  }
  const outcome = settlement === "rolled-forward" ? "rolled-forward" : "rolled-back";
  const done =
    settlement === "rolled-forward"
      ? `${what} was interrupted after lane.json named ${entry.to} (step ${entry.step}); the swap was finished`
      : `${what} was interrupted before lane.json named ${entry.to} (step ${entry.step}); the runner files of ${runnerVersion || "the previous version"} were put back, so files and lane.json agree`;
  if (!entry.wasRunning) {
    await core.setState(laneId, { desired: "stopped", state: "stopped" });
    await core.journal.clear(laneId);
    return { outcome, runnerVersion, message: `${done}; the lane stays stopped` };
  }
  const runtime = core.runtimeFor(entry.backend);
  try {
    await runtime.start(laneId);
  } catch (err) {
    await core.setState(laneId, { desired: "stopped", state: "needs-attention", attentionReason: "START_FAILED", recoveryNote: core.attention("START_FAILED", record) });
    await core.journal.clear(laneId);
    return { outcome: "needs-attention", runnerVersion, message: `${done}, but the lane did not start: ${errorMessage(err)}` };
  }
  await core.setState(laneId, { desired: "running", state: "running", health: "unknown", restarts: [], nextRestartAtMs: 0, attentionReason: "", recoveryNote: "" });
  await core.journal.clear(laneId);
  return { outcome, runnerVersion, message: `${done}; the lane was started again` };
}
