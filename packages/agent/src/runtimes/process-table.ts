/**
 * The agent's view of a child it started (`config.sh`): its identity across pid reuse, and killing it when the
 * agent that started it died. Behind an interface so the in-memory runtime can model its fake children and crash
 * tests run without `/proc`.
 */
import { isSameProcess, readProcStat } from "./proc-scan.js";

/** Identify and kill a child process by pid and start time. */
export interface ProcessTable {
  /** The start time of a live process (with the pid, its identity), or `undefined` when it is gone. */
  startTime(pid: number): Promise<number | undefined>;
  /** SIGKILL the process if it is still the one identified by `startTime`, and wait (bounded) until it is gone. */
  killIfSame(pid: number, startTime: number): Promise<void>;
}

/** The host's processes, through `/proc`. */
export const procProcessTable: ProcessTable = Object.freeze({
  async startTime(pid: number): Promise<number | undefined> {
    return (await readProcStat(pid))?.startTime;
  },
  async killIfSame(pid: number, startTime: number): Promise<void> {
    if (!(await isSameProcess(pid, startTime))) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    for (let i = 0; i < 50 && (await isSameProcess(pid, startTime)); i++) await new Promise((r) => setTimeout(r, 20));
  },
});
