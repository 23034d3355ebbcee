/**
 * The lane directory `<laneRoot>/<laneId>/` and its signed `lane.json`. Every path below the lane root is
 * `lstat`ed component by component before use; the directory is only ever deleted after its `lane.json` verified.
 *
 * Layout:
 * - `lane.json` (0644): the signed record (no secret);
 * - `lane.env` (0600, root): the unit's `EnvironmentFile`, holding a JIT config only until the runner used it;
 * - `runner/` (owned by the lane user): the lane's own copy of the runner distribution (systemd lanes);
 * - `runner.next/`, `runner.old/`: only while a runner upgrade swaps `runner/` (or after a crash interrupted it);
 * - `runner.log` (0640): the runner's console (systemd lanes).
 */
import { chmod, chown, cp, lstat, mkdir, open, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RejectError, RejectReason, validateLaneId } from "@lanekeeper/shared";
import { fsyncDir, readSmallFile, writeFileAtomic } from "../atomic-file.js";
import { AgentStateError } from "../errors.js";
import type { BackendName, LaneRecord, MarkerSigner } from "./lane-marker.js";
import { MAX_STATE_FILE_BYTES } from "../limits.js";
import { checkPathUnder, type PathState } from "../safe-path.js";

/** File names inside a lane directory. */
export const LANE_FILES = Object.freeze({
  record: "lane.json",
  env: "lane.env",
  runner: "runner",
  log: "runner.log",
});

/** Lane directories under one root, verified with the agent's marker signer. */
export class LaneDirectories {
  constructor(
    readonly root: string,
    private readonly signer: MarkerSigner,
  ) {}

  /** `<root>/<laneId>` (the id is validated). */
  dir(laneId: string): string {
    return join(this.root, validateLaneId(laneId));
  }

  /** The runner distribution copy of a lane. */
  runnerDir(laneId: string): string {
    return join(this.dir(laneId), LANE_FILES.runner);
  }

  /** The unit's environment file. */
  envFile(laneId: string): string {
    return join(this.dir(laneId), LANE_FILES.env);
  }

  /** The runner's console log (systemd lanes). */
  logFile(laneId: string): string {
    return join(this.dir(laneId), LANE_FILES.log);
  }

  /** What exists at the lane directory, after symlink checks. */
  async state(laneId: string): Promise<PathState> {
    return checkPathUnder(this.root, validateLaneId(laneId));
  }

  /** Ids of every directory under the root that looks like a lane (not yet verified). */
  async listIds(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [];
      throw err;
    });
    return entries.filter((e) => e.isDirectory() && /^[a-z0-9][a-z0-9-]{0,62}$/.test(e.name)).map((e) => e.name);
  }

  /**
   * Create the directory and its signed `lane.json`. Refuses (`LANE_EXISTS` or `NOT_OWNED`) when the directory
   * exists already.
   */
  async create(record: LaneRecord): Promise<void> {
    const laneId = record.laneId;
    const st = await this.state(laneId);
    if (st !== "missing") {
      const owned = await this.read(laneId).then(
        () => true,
        () => false,
      );
      throw new RejectError(
        owned ? RejectReason.LANE_EXISTS : RejectReason.NOT_OWNED,
        owned ? `lane ${laneId} exists already` : `${this.dir(laneId)} exists and is not a lane of this agent; it is left alone`,
        { details: { laneId } },
      );
    }
    await mkdir(this.root, { recursive: true, mode: 0o755 });
    await mkdir(this.dir(laneId), { mode: 0o755 });
    await chmod(this.dir(laneId), 0o755);
    await writeFileAtomic(join(this.dir(laneId), LANE_FILES.record), this.signer.signRecord(record), 0o644);
    await fsyncDir(this.root);
  }

  /**
   * Read and verify `lane.json`: no symlink anywhere below the root, signature of this agent, bound to this
   * lane (and backend/name when given). Throws `RejectError` (`LANE_NOT_FOUND`, `NOT_OWNED`, `SYMLINK`,
   * `BAD_MARKER`, `FOREIGN_HOST`).
   */
  async read(laneId: string, expect: { backend?: BackendName; runtimeName?: string } = {}): Promise<LaneRecord> {
    const st = await this.state(laneId);
    if (st === "missing") throw new RejectError(RejectReason.LANE_NOT_FOUND, `lane ${laneId} does not exist on this host`, { details: { laneId } });
    if (st !== "directory") throw new RejectError(RejectReason.NOT_OWNED, `${this.dir(laneId)} is not a directory`, { details: { laneId } });
    const fileState = await checkPathUnder(this.root, join(laneId, LANE_FILES.record));
    if (fileState !== "file") {
      throw new RejectError(RejectReason.NOT_OWNED, `${this.dir(laneId)} has no lane.json: not created by this agent`, { details: { laneId } });
    }
    let buf: Buffer | undefined;
    try {
      buf = await readSmallFile(join(this.dir(laneId), LANE_FILES.record), MAX_STATE_FILE_BYTES);
    } catch (err) {
      throw new RejectError(RejectReason.BAD_MARKER, `lane.json of lane ${laneId} cannot be read`, { cause: err, details: { laneId } });
    }
    if (!buf) throw new RejectError(RejectReason.NOT_OWNED, `lane ${laneId} has no lane.json`, { details: { laneId } });
    return this.signer.verifyRecord(buf.toString("utf8"), { laneId, ...expect });
  }

  /**
   * Copy a runner distribution into the lane (`runner/`), owned by the lane user. The copy never follows
   * symlinks inside the distribution.
   */
  async copyRunner(laneId: string, distDir: string, uid: number, gid: number): Promise<void> {
    const dest = this.runnerDir(laneId);
    if ((await checkPathUnder(this.root, join(laneId, LANE_FILES.runner))) !== "missing") {
      // A partial copy from an interrupted create: start over.
      await rm(dest, { recursive: true, force: true });
    }
    await cp(distDir, dest, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    await makeOwnerWritable(dest);
    await chownTree(dest, uid, gid);
  }

  /**
   * Replace a lane's runner with a copy of `distDir`, moving over what belongs to the lane rather than the
   * release: its registration files, `.env`/`.path`, work directory and diagnostics. The new tree is built and
   * synced beside the old one (`runner.next`), then swapped in with two renames (`runner` → `runner.old`,
   * `runner.next` → `runner`), each made durable before `onStep` reports it so the caller can journal it. The old
   * tree stays as `runner.old` until the caller committed the new version to `lane.json` and calls
   * {@link LaneDirectories.discardSpareRunners}; until then {@link LaneDirectories.rollBackSwap} restores it from any
   * point a crash can leave.
   */
  async swapRunner(laneId: string, distDir: string, uid: number, gid: number, onStep: (step: SwapStep) => Promise<void> = () => Promise.resolve()): Promise<void> {
    if ((await checkPathUnder(this.root, join(laneId, LANE_FILES.runner))) !== "directory") {
      throw new RejectError(RejectReason.LANE_NOT_FOUND, `lane ${laneId} has no runner directory`, { details: { laneId } });
    }
    const dir = this.dir(laneId);
    const cur = this.runnerDir(laneId);
    const next = join(dir, SWAP_DIRS.next);
    const old = join(dir, SWAP_DIRS.old);
    // Leftovers of a swap that was settled (or of an agent that did not journal swaps) are never the lane's runner.
    await rm(next, { recursive: true, force: true });
    await rm(old, { recursive: true, force: true });
    await cp(distDir, next, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    await makeOwnerWritable(next);
    for (const name of RUNNER_LANE_FILES) {
      const st = await lstat(join(cur, name)).catch(() => undefined);
      if (st === undefined || st.isSymbolicLink()) continue;
      await rm(join(next, name), { recursive: true, force: true });
      await cp(join(cur, name), join(next, name), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    }
    await chownTree(next, uid, gid);
    // A power cut after the swap must not leave a tree of empty files behind the new name.
    await syncTree(next);
    await fsyncDir(dir);
    await onStep("staged");
    await rename(cur, old);
    await fsyncDir(dir);
    await onStep("swapping");
    await rename(next, cur);
    await fsyncDir(dir);
    await onStep("swapped");
  }

  /** Which of `runner/`, `runner.next/` and `runner.old/` a lane holds (symlinks and other kinds are refused). */
  async swapState(laneId: string): Promise<RunnerSwapState> {
    const has = async (name: string): Promise<boolean> => {
      const st = await checkPathUnder(this.root, join(validateLaneId(laneId), name));
      if (st === "missing") return false;
      if (st !== "directory") throw new AgentStateError(`${join(this.dir(laneId), name)} is not a directory; the lane's runner is left alone`);
      return true;
    };
    return { runner: await has(LANE_FILES.runner), next: await has(SWAP_DIRS.next), old: await has(SWAP_DIRS.old) };
  }

  /**
   * Keep `runner/` and delete `runner.old/` and `runner.next/`: after the new version was committed to `lane.json`
   * (also finishing a swap a crash interrupted after the commit), or to clear what a swap left before it moved
   * anything. Idempotent.
   */
  async discardSpareRunners(laneId: string): Promise<void> {
    const s = await this.swapState(laneId);
    const dir = this.dir(laneId);
    if (!s.runner) {
      // The commit follows the second rename, so this is only reachable if that rename was lost (a power cut).
      if (!s.next) throw new AgentStateError(`lane ${laneId} has neither runner/ nor runner.next/: its runner files are gone`);
      await rename(join(dir, SWAP_DIRS.next), this.runnerDir(laneId));
      await fsyncDir(dir);
    }
    await rm(join(dir, SWAP_DIRS.old), { recursive: true, force: true });
    await rm(join(dir, SWAP_DIRS.next), { recursive: true, force: true });
    await fsyncDir(dir);
  }

  /**
   * Undo an uncommitted swap (`lane.json` still names the old version): put `runner.old` back as `runner/` and
   * delete the new tree. Every state a crash inside {@link LaneDirectories.swapRunner} or inside this method leaves
   * is handled, so running it again after a crash is safe:
   * - `runner` + `runner.next`: nothing was moved yet (`runner/` is the old tree);
   * - `runner.old` + `runner.next`, no `runner/`: between the two renames;
   * - `runner` + `runner.old`: swapped (`runner/` is the new tree).
   */
  async rollBackSwap(laneId: string): Promise<void> {
    let s = await this.swapState(laneId);
    const dir = this.dir(laneId);
    const cur = this.runnerDir(laneId);
    const next = join(dir, SWAP_DIRS.next);
    const old = join(dir, SWAP_DIRS.old);
    if (s.runner && s.old) {
      // runner/ holds the new tree: move it aside first, so the old tree never has to share a name.
      await rm(next, { recursive: true, force: true });
      await rename(cur, next);
      await fsyncDir(dir);
      s = { runner: false, next: true, old: true };
    }
    if (!s.runner) {
      if (!s.old) throw new AgentStateError(`lane ${laneId} has neither runner/ nor runner.old/: its previous runner files are gone`);
      await rename(old, cur);
      await fsyncDir(dir);
    }
    await rm(next, { recursive: true, force: true });
    await fsyncDir(dir);
  }

  /** Re-sign and rewrite a lane's `lane.json` (after an upgrade changed its runner version or image). */
  async writeRecord(record: LaneRecord): Promise<void> {
    await this.read(record.laneId);
    await writeFileAtomic(join(this.dir(record.laneId), LANE_FILES.record), this.signer.signRecord(record), 0o644);
  }

  /** Write the unit's environment file (0600, root). Values must be single-line tokens. */
  async writeEnv(laneId: string, vars: Readonly<Record<string, Buffer | string>>): Promise<void> {
    const lines: string[] = [];
    for (const [k, v] of Object.entries(vars)) {
      const value = typeof v === "string" ? v : v.toString("utf8");
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k) || !/^[A-Za-z0-9+/=._:-]*$/.test(value)) {
        throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `environment value for ${k} has characters a runner secret never contains`);
      }
      lines.push(`${k}=${value}`);
    }
    await checkPathUnder(this.root, join(laneId, LANE_FILES.env));
    await writeFileAtomic(this.envFile(laneId), lines.length > 0 ? `${lines.join("\n")}\n` : "", 0o600);
  }

  /** Empty the environment file, if there is one (never leave a used secret on disk). */
  async wipeEnv(laneId: string): Promise<void> {
    const st = await checkPathUnder(this.root, join(laneId, LANE_FILES.env));
    if (st === "file") await writeFileAtomic(this.envFile(laneId), "", 0o600);
  }

  /** Whether the environment file currently holds something. */
  async envHasContent(laneId: string): Promise<boolean> {
    const st = await lstat(this.envFile(laneId)).catch(() => undefined);
    return st !== undefined && st.isFile() && st.size > 0;
  }

  /** Create an empty log file the unit appends to (0640). */
  async touchLog(laneId: string): Promise<void> {
    await checkPathUnder(this.root, join(laneId, LANE_FILES.log));
    await writeFile(this.logFile(laneId), "", { flag: "a", mode: 0o640 });
  }

  /**
   * Delete a lane directory that holds nothing but what an interrupted {@link LaneDirectories.create} leaves
   * (nothing, or its temp file). Anything else is left alone. Returns whether it was deleted.
   */
  async removeIfPartial(laneId: string): Promise<boolean> {
    if ((await this.state(laneId)) !== "directory") return false;
    const entries = await readdir(this.dir(laneId));
    if (!entries.every((e) => /^\.lane\.json\.[0-9a-f]+\.tmp$/.test(e))) return false;
    await rm(this.dir(laneId), { recursive: true, force: true });
    await fsyncDir(this.root);
    return true;
  }

  /**
   * Delete the lane directory. Verifies `lane.json` first (unless `allowUnverified` for a directory this agent
   * created moments ago and whose record was never written).
   */
  async remove(laneId: string, opts: { allowUnverified?: boolean } = {}): Promise<void> {
    const st = await this.state(laneId);
    if (st === "missing") return;
    if (!opts.allowUnverified) await this.read(laneId);
    // rm does not follow symlinks inside the tree: it unlinks them.
    await rm(this.dir(laneId), { recursive: true, force: true });
    await fsyncDir(this.root);
  }
}

/** Steps of {@link LaneDirectories.swapRunner}, each reported once it is durable. */
export type SwapStep = "staged" | "swapping" | "swapped";

/** Which runner trees a lane directory holds during (or after an interrupted) swap. */
export interface RunnerSwapState {
  readonly runner: boolean;
  readonly next: boolean;
  readonly old: boolean;
}

/** The two trees beside `runner/` while a swap is in progress. */
const SWAP_DIRS = Object.freeze({ next: "runner.next", old: "runner.old" });

/** What a runner directory holds for its lane, not from the release: kept across a runner upgrade. */
const RUNNER_LANE_FILES = Object.freeze([".runner", ".credentials", ".credentials_rsaparams", ".env", ".path", "_work", "_diag"]);

/** A copy of the read-only shared release must be writable by its lane (the runner writes into its root). */
async function makeOwnerWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) await makeOwnerWritable(p);
    else await chmod(p, ((await lstat(p)).mode & 0o777) | 0o200);
  }
}

/** fsync every file and directory of a tree (the copy's data and names are on disk before it is renamed in). */
async function syncTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await syncTree(p);
    else if (e.isFile()) await syncFile(p);
  }
  await fsyncDir(dir);
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

/** Guard used by tests and recovery: a lane directory that exists but cannot be verified. */
export function isOwnershipRejection(err: unknown): boolean {
  return (
    err instanceof RejectError &&
    [RejectReason.NOT_OWNED, RejectReason.BAD_MARKER, RejectReason.FOREIGN_HOST, RejectReason.SYMLINK].includes(err.reason)
  );
}
