/**
 * The worker processes of a fleet simulation: {@link SimWorkers.start} forks them, hands each its share of the
 * hosts and runs `lanekeeper-agent init` for every host (keys are made at run time, in the hosts' state
 * directories); {@link SimWorkers.startHosts} starts the agents once the trust file exists.
 */
import { fork, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SimEnrollment, SimHostCommon, SimHostSpec } from "./sim-host.js";
import type { SimWorkerReply, SimWorkerRequest, SimWorkerStats } from "./sim-messages.js";

/** The built worker entry (vitest runs this file from source; the worker always runs from `dist`). */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith(".ts") ? here.replace(/\/src\/fleet-sim\/[^/]+\.ts$/, "/dist/fleet-sim/sim-worker.js") : here.replace(/[^/]+\.js$/, "sim-worker.js");
}

/** Totals over every worker. */
export interface SimFleetStats extends SimWorkerStats {
  /** Resident memory of each worker process, MB. */
  readonly workerRssMb: readonly number[];
}

class Worker {
  private waiting: { type: SimWorkerReply["type"]; resolve: (m: SimWorkerReply) => void; reject: (e: Error) => void } | undefined;
  private exited: string | undefined;

  constructor(readonly child: ChildProcess) {
    child.on("message", (m: SimWorkerReply) => {
      const w = this.waiting;
      if (!w) return;
      this.waiting = undefined;
      if (m.type === "error") w.reject(new Error(`simulation worker ${child.pid}: ${m.message}`));
      else if (m.type !== w.type) w.reject(new Error(`simulation worker ${child.pid}: ${m.type} where ${w.type} was expected`));
      else w.resolve(m);
    });
    child.on("exit", (code, signal) => {
      this.exited = `exited (code ${code}, signal ${signal})`;
      this.waiting?.reject(new Error(`simulation worker ${child.pid} ${this.exited}`));
      this.waiting = undefined;
    });
  }

  ask<T extends SimWorkerReply["type"]>(req: SimWorkerRequest, type: T): Promise<Extract<SimWorkerReply, { type: T }>> {
    if (this.exited !== undefined) return Promise.reject(new Error(`simulation worker ${this.child.pid} ${this.exited}`));
    if (this.waiting) return Promise.reject(new Error("one request at a time"));
    return new Promise((resolve, reject) => {
      this.waiting = { type, resolve: resolve as (m: SimWorkerReply) => void, reject };
      this.child.send(req);
    });
  }

  get alive(): boolean {
    return this.exited === undefined;
  }
}

/** Options of {@link SimWorkers.start}. */
export interface SimWorkersOptions {
  readonly workers: number;
  readonly hosts: readonly SimHostSpec[];
  readonly common: SimHostCommon;
  readonly githubWebUrl: string;
  /** The workers' stdout and stderr (agent warnings) go here. */
  readonly logPath: string;
}

/** Running simulation workers. */
export class SimWorkers {
  private constructor(
    private readonly workers: Worker[],
    /** Each host's enrollment, in host order. */
    readonly enrollments: readonly SimEnrollment[],
  ) {}

  /** Fork the workers and init every host (keys, replay state); resolves with the enrollments. */
  static async start(o: SimWorkersOptions): Promise<SimWorkers> {
    const n = Math.max(1, Math.min(o.workers, o.hosts.length));
    const out = createWriteStream(o.logPath, { flags: "a" });
    const workers: Worker[] = [];
    for (let i = 0; i < n; i++) {
      const child = fork(workerEntry(), [], { stdio: ["ignore", "pipe", "pipe", "ipc"], serialization: "advanced" });
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      workers.push(new Worker(child));
    }
    const sim = new SimWorkers(workers, []);
    try {
      const shares = workers.map((_, i) => o.hosts.filter((_h, j) => j % n === i));
      const replies = await Promise.all(workers.map((w, i) => w.ask({ type: "init", common: o.common, hosts: shares[i] ?? [], githubWebUrl: o.githubWebUrl }, "enrolled")));
      const byHost = new Map(replies.flatMap((r) => r.enrollments).map((e) => [e.hostId, e]));
      return new SimWorkers(workers, o.hosts.map((h) => byHost.get(h.hostId) as SimEnrollment));
    } catch (err) {
      await sim.stop();
      throw err;
    }
  }

  /** Start every host's agent with this trust file; resolves once all listen on NATS. */
  async startHosts(trustFile: string): Promise<SimFleetStats> {
    const replies = await Promise.all(this.workers.map((w) => w.ask({ type: "start", trustFile }, "started")));
    return total(replies.map((r) => r.stats));
  }

  /** Counts over every host. */
  async stats(): Promise<SimFleetStats> {
    const replies = await Promise.all(this.workers.map((w) => w.ask({ type: "stats" }, "stats")));
    return total(replies.map((r) => r.stats));
  }

  /** PIDs of the worker processes. */
  get pids(): number[] {
    return this.workers.map((w) => w.child.pid ?? 0);
  }

  /** Stop every host and the workers (SIGKILL for a worker that does not finish in time). Idempotent. */
  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (!w.alive) return;
        const done = new Promise<void>((resolve) => w.child.once("exit", () => resolve()));
        const timer = setTimeout(() => w.child.kill("SIGKILL"), 30_000);
        await w.ask({ type: "stop" }, "stopped").catch(() => w.child.kill("SIGKILL"));
        await done;
        clearTimeout(timer);
      }),
    );
  }
}

function total(all: readonly SimWorkerStats[]): SimFleetStats {
  const sum = (k: keyof SimWorkerStats): number => all.reduce((a, s) => a + s[k], 0);
  return {
    hosts: sum("hosts"),
    lanes: sum("lanes"),
    online: sum("online"),
    intents: sum("intents"),
    runnerRequests: sum("runnerRequests"),
    rssMb: sum("rssMb"),
    workerRssMb: all.map((s) => s.rssMb),
  };
}
