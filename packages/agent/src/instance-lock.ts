/**
 * One agent per state directory: `<stateDir>/agent-run.lock` holds the pid and process start time of the agent
 * that runs. A lock of a dead process (or of a reused pid with another start time) is taken over.
 */
import { constants as fsConstants } from "node:fs";
import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { AgentLockedError } from "./errors.js";
import { isSameProcess, readProcStat } from "./proc-scan.js";

/** File name of the run lock inside the state directory. */
export const RUN_LOCK_FILE = "agent-run.lock";

/** A held lock; {@link InstanceLock.release} on shutdown. */
export class InstanceLock {
  private constructor(private readonly path: string) {}

  /** Take the lock or throw {@link AgentLockedError}. */
  static async acquire(stateDir: string): Promise<InstanceLock> {
    const path = join(stateDir, RUN_LOCK_FILE);
    const me = await readProcStat(process.pid);
    const content = `${process.pid} ${me?.startTime ?? 0}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        await fh.writeFile(content);
        await fh.sync();
        await fh.close();
        return new InstanceLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const [pidText, startText] = (await readFile(path, "utf8").catch(() => "")).trim().split(" ");
      const pid = Number.parseInt(pidText ?? "", 10);
      const start = Number.parseInt(startText ?? "", 10);
      if (Number.isSafeInteger(pid) && pid > 0 && (await isSameProcess(pid, start))) {
        throw new AgentLockedError(`another lanekeeper-agent (pid ${pid}) runs with state directory ${stateDir}; two agents must never share one`);
      }
      await unlink(path).catch(() => undefined);
    }
    throw new AgentLockedError(`cannot take the lock ${path}`);
  }

  /** Release the lock. */
  async release(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
  }
}
