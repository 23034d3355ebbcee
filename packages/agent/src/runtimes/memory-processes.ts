/**
 * A fake process table for the in-memory runtime: pids and start times handed out in order (deterministic), so the
 * runner's `Runner.Listener`, its `Runner.Worker` per job and `config.sh` children have identities that crash
 * recovery can journal and kill exactly as it does with `/proc`.
 */
import type { ProcessTable } from "./process-table.js";

/** One fake process. */
export interface MemoryProcess {
  readonly pid: number;
  readonly startTime: number;
  /** Program name, e.g. `Runner.Worker` or `config.sh`. */
  readonly name: string;
}

/** Fake processes, shared by every runtime of one simulated host. */
export class MemoryProcessTable implements ProcessTable {
  private readonly live = new Map<number, MemoryProcess>();
  private readonly killedPids: number[] = [];
  private nextPid: number;
  private ticks = 0;

  /** @param firstPid - the first pid handed out. @default 1000 */
  constructor(firstPid = 1000) {
    this.nextPid = firstPid;
  }

  /** Start a process. */
  spawn(name: string): MemoryProcess {
    const p: MemoryProcess = { pid: this.nextPid++, startTime: ++this.ticks, name };
    this.live.set(p.pid, p);
    return p;
  }

  /** The process ended on its own. */
  exit(pid: number): void {
    this.live.delete(pid);
  }

  /** Whether `pid` is alive (and, when given, still the process that started at `startTime`). */
  alive(pid: number, startTime?: number): boolean {
    const p = this.live.get(pid);
    return p !== undefined && (startTime === undefined || p.startTime === startTime);
  }

  /** Pids that were killed through {@link MemoryProcessTable.killIfSame}, in order. */
  get killed(): readonly number[] {
    return this.killedPids;
  }

  startTime(pid: number): Promise<number | undefined> {
    return Promise.resolve(this.live.get(pid)?.startTime);
  }

  killIfSame(pid: number, startTime: number): Promise<void> {
    if (this.alive(pid, startTime)) {
      this.live.delete(pid);
      this.killedPids.push(pid);
    }
    return Promise.resolve();
  }
}
