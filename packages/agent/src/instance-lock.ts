/**
 * One agent per state directory: `<stateDir>/agent.lock` holds the pid and process start time of the agent that
 * runs. It is the agent's only lock: `lanekeeper-agent run` takes it once, before anything else touches the state
 * directory, and hands it to the daemon and to the intake's replay state, so nothing else locks on its own. A
 * lock of a dead process (or of a reused pid with another start time, as after a `kill -9` in a PID namespace)
 * is taken over.
 */
import { constants as fsConstants } from "node:fs";
import { mkdir, open, readFile, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AgentLockedError } from "./errors.js";
import { isSameProcess, readProcStat } from "./runtimes/proc-scan.js";

/** File name of the single-instance lock inside the state directory. */
export const INSTANCE_LOCK_FILE = "agent.lock";

/** A held lock; the one who acquired it calls {@link InstanceLock.release} on shutdown. */
export class InstanceLock {
  private released = false;

  private constructor(
    /** The state directory the lock is held on (absolute). */
    readonly stateDir: string,
    /** The lock file. */
    readonly path: string,
  ) {}

  /**
   * Take the lock on `stateDir` (created 0700 if missing) or throw {@link AgentLockedError} when a live process
   * holds it, this one included: a second holder in the same process is as wrong as a second agent.
   */
  static async acquire(stateDir: string): Promise<InstanceLock> {
    const dir = resolve(stateDir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, INSTANCE_LOCK_FILE);
    const me = await readProcStat(process.pid);
    const content = `${process.pid} ${me?.startTime ?? 0}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        try {
          await fh.writeFile(content);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return new InstanceLock(dir, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const [pidText, startText] = (await readFile(path, "utf8").catch(() => "")).trim().split(" ");
      const pid = Number.parseInt(pidText ?? "", 10);
      const start = Number.parseInt(startText ?? "", 10);
      if (Number.isSafeInteger(pid) && pid > 0 && (await isSameProcess(pid, start))) {
        throw new AgentLockedError(`another lanekeeper-agent (pid ${pid}) runs with state directory ${dir}; two agents must never share one`);
      }
      await unlink(path).catch(() => undefined);
    }
    throw new AgentLockedError(`cannot take the lock ${path}`);
  }

  /** Whether this lock is still held (not released). */
  get held(): boolean {
    return !this.released;
  }

  /** Whether this lock is held on `stateDir`. */
  covers(stateDir: string): boolean {
    return this.held && resolve(stateDir) === this.stateDir;
  }

  /** Release the lock (idempotent). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await unlink(this.path).catch(() => undefined);
  }
}
