/**
 * A worker process of the fleet simulation: many simulated hosts ({@link startSimHost}) in one Node process,
 * driven over the IPC channel by {@link SimWorkers} (`init` → enrollments, `start` → hosts listening on NATS,
 * `stats`, `stop`). Started with `child_process.fork`; never imported.
 */
import { createLogger, type Capabilities } from "@lanekeeper/shared";
import { gatherCapabilities } from "@lanekeeper/agent";
import { initSimHost, startSimHost, type SimHost, type SimHostCommon, type SimHostSpec } from "./sim-host.js";
import { HttpRunnerProtocol } from "./sim-runtime.js";
import type { SimWorkerReply, SimWorkerRequest, SimWorkerStats } from "./sim-messages.js";

/** Hosts initialized or started at once per worker (each start writes a few files and opens a NATS connection). */
const PARALLEL = 16;

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

let common: SimHostCommon | undefined;
let specs: SimHostSpec[] = [];
const hosts: SimHost[] = [];
let protocol: HttpRunnerProtocol | undefined;
// Warnings and errors only, to stdout (the parent keeps them in a log file).
const log = createLogger({ component: "agent", level: "warn" });
let capabilities: Promise<Capabilities> | undefined;
// One answer for every host of this process: `systeminformation` spawns commands, once is enough.
const sharedCapabilities = (): Promise<Capabilities> => (capabilities ??= gatherCapabilities({}));

function reply(m: SimWorkerReply): void {
  process.send?.(m);
}

function stats(): SimWorkerStats {
  let lanes = 0;
  let online = 0;
  let intents = 0;
  for (const h of hosts) {
    lanes += h.runtime.laneCount();
    online += h.runtime.onlineCount();
    intents += h.intake.replay.hwm;
  }
  return { hosts: hosts.length, lanes, online, intents, runnerRequests: protocol?.requests ?? 0, rssMb: process.memoryUsage().rss / 2 ** 20 };
}

async function handle(m: SimWorkerRequest): Promise<void> {
  switch (m.type) {
    case "init": {
      common = m.common;
      specs = m.hosts;
      protocol = new HttpRunnerProtocol(m.githubWebUrl);
      const enrollments: Awaited<ReturnType<typeof initSimHost>>[] = [];
      const c = common;
      await eachLimited(specs, PARALLEL, async (s) => {
        enrollments.push(await initSimHost(s, c));
      });
      reply({ type: "enrolled", enrollments });
      return;
    }
    case "start": {
      if (common === undefined || protocol === undefined) throw new Error("start before init");
      const c = common;
      const p = protocol;
      await eachLimited(specs, PARALLEL, async (s) => {
        hosts.push(await startSimHost(s, c, { trustFile: m.trustFile, protocol: p, capabilities: sharedCapabilities, log }));
      });
      reply({ type: "started", stats: stats() });
      return;
    }
    case "stats":
      reply({ type: "stats", stats: stats() });
      return;
    case "stop":
      await eachLimited(hosts.splice(0), PARALLEL, (h) => h.stop());
      reply({ type: "stopped" });
      process.disconnect?.();
      return;
  }
}

process.on("message", (m: SimWorkerRequest) => {
  handle(m).catch((err: unknown) => {
    reply({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  });
});
// The parent went away: nothing else will stop these hosts.
process.on("disconnect", () => {
  void Promise.allSettled(hosts.map((h) => h.stop())).finally(() => process.exit(0));
});
