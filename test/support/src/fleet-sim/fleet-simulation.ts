/**
 * A whole fleet simulation on this machine: the GitHub emulator serving the fleet's repositories, a real
 * nats-server with lanekeeper's per-host logins, {@link SimWorkers} running the simulated hosts, a generated
 * policy with the hosts' enrollments, and the coordinator's keys and trust file made by `lanekeeper keys`.
 * The coordinator itself is the real CLI, run by the caller through {@link FleetSimulation.cli} or
 * {@link FleetSimulation.serve}. The emulator and nats-server launchers come from `@lanekeeper/harness` and are
 * handed in (this package does not depend on the harness).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { layoutSimFleet, simPolicyText, SIM_POOL, type SimFleetLayout, type SimFleetSize } from "./sim-fleet-layout.js";
import type { SimHostCommon, SimHostSpec } from "./sim-host.js";
import { SimWorkers } from "./sim-workers.js";

/** The built coordinator CLI. */
export const SIM_COORDINATOR_BIN = fileURLToPath(new URL("../../../../packages/coordinator/bin/lanekeeper.js", import.meta.url));

const TOKEN_ENV = "LK_GITHUB_TOKEN";
const NATS_PASSWORD_ENV = "LK_NATS_PASSWORD";
const COORDINATOR_USER = "coordinator";

/** The GitHub emulator as the simulation uses it (`startGitHubEmulator` of `@lanekeeper/harness`). */
export interface SimGitHub {
  readonly url: string;
  readonly apiUrl: string;
  readonly token: string;
  stop(): Promise<void>;
}

/** The nats-server as the simulation uses it (`startNatsServer` of `@lanekeeper/harness`). */
export interface SimNats {
  readonly url: string;
  stop(): Promise<void>;
}

/** The launchers, from `@lanekeeper/harness`. */
export interface FleetSimulationDeps {
  startGitHubEmulator(o: { repos: string[]; offlineAfterMs: number; rateLimitPerHour: number }): Promise<SimGitHub>;
  startNatsServer(o: {
    users: { agents: { hostId: string; user: string; password: string }[]; coordinator: { user: string; password: string } };
    config: string;
  }): Promise<SimNats>;
}

/** Options of {@link startFleetSimulation}. */
export interface FleetSimulationOptions extends SimFleetSize {
  /** Worker processes the hosts are spread over. */
  readonly workers: number;
  /** Directory for the hosts, policy, keys, audit and logs (the caller removes it). */
  readonly dir: string;
  readonly deps: FleetSimulationDeps;
  /** Policy `coordinator.applyConcurrency`. @default 4 */
  readonly applyConcurrency?: number;
  /** Policy `coordinator.reconcileIntervalMs`. @default 30000 */
  readonly reconcileIntervalMs?: number;
  /** Agent `inventoryIntervalMs`. @default the agent's default */
  readonly inventoryIntervalMs?: number;
  /** Agent `health.intervalMs`. @default the agent's default */
  readonly healthIntervalMs?: number;
  /** Primary rate limit of the emulator's token per hour. @default 5000 (GitHub's for a token) */
  readonly rateLimitPerHour?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** A finished coordinator CLI run. */
export interface SimCliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** Highest resident set size seen (`VmHWM`, sampled), MB. */
  readonly peakRssMb: number;
}

/** A running `lanekeeper serve`. */
export interface SimServe {
  readonly child: ChildProcess;
  /** Current resident set size, MB (`VmRSS`). */
  rssMb(): Promise<number>;
  /** Highest resident set size so far, MB (`VmHWM`). */
  peakRssMb(): Promise<number>;
  /** stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

/** A running simulation. */
export interface FleetSimulation {
  readonly layout: SimFleetLayout;
  readonly github: SimGitHub;
  readonly nats: SimNats;
  /** nats-server's monitoring endpoint (`/varz`). */
  readonly natsMonitorUrl: string;
  readonly workers: SimWorkers;
  readonly policyPath: string;
  readonly auditPath: string;
  /** Environment of the coordinator CLI (token, NATS password, policy path). */
  readonly env: Readonly<Record<string, string>>;
  /** Run `lanekeeper <args>` to the end (with `env` added to {@link FleetSimulation.env}). */
  cli(args: readonly string[], opts?: { timeoutMs?: number; env?: Readonly<Record<string, string>> }): Promise<SimCliResult>;
  /** Start `lanekeeper serve <args>` (with `extraEnv`, e.g. `LANEKEEPER_LOG_FILE`). */
  serve(args: readonly string[], extraEnv?: Readonly<Record<string, string>>): SimServe;
  /** Messages in and out of nats-server so far (`/varz`). */
  natsMessages(): Promise<{ in: number; out: number }>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === "object" && addr !== null ? addr.port : 0));
    });
  });
}

async function procStatusMb(pid: number | undefined, key: "VmRSS" | "VmHWM"): Promise<number> {
  if (pid === undefined) return 0;
  const text = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) / 1024 : 0;
}

const secret = (): string => randomBytes(24).toString("base64url");

/** Extra node flags for the coordinator CLI, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (node refuses them in NODE_OPTIONS). */
const coordinatorNodeArgs = (): string[] => (process.env.LK_FLEET_COORDINATOR_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");

/** Start the simulation (see the module comment); `stop` undoes everything but the directory. */
export async function startFleetSimulation(o: FleetSimulationOptions): Promise<FleetSimulation> {
  const log = o.log ?? (() => undefined);
  const cleanup: (() => Promise<unknown>)[] = [];
  const undo = async (): Promise<void> => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    const layout = layoutSimFleet(o);
    // A session stays online without polling for a day: 20,000 simulated runners hold no long poll open.
    const github = await o.deps.startGitHubEmulator({ repos: [...layout.scopes], offlineAfterMs: 86_400_000, rateLimitPerHour: o.rateLimitPerHour ?? 5000 });
    cleanup.push(() => github.stop());
    const hosts: SimHostSpec[] = layout.hostIds.map((hostId) => ({
      hostId,
      natsUser: `agent-${hostId}`,
      natsPassword: secret(),
      scopes: [...(layout.hostScopes.get(hostId) ?? [])],
    }));
    const coordinatorPassword = secret();
    const monitorPort = await freePort();
    const nats = await o.deps.startNatsServer({
      users: { agents: hosts.map((h) => ({ hostId: h.hostId, user: h.natsUser, password: h.natsPassword })), coordinator: { user: COORDINATOR_USER, password: coordinatorPassword } },
      config: `\nhttp: "127.0.0.1:${monitorPort}"\nmax_connections: ${hosts.length + 1000}\n`,
    });
    cleanup.push(() => nats.stop());
    log(`emulator ${github.url} (${layout.scopes.length} repositories), nats-server ${nats.url} (${hosts.length} agent logins)`);

    const common: SimHostCommon = {
      baseDir: join(o.dir, "hosts"),
      natsServers: [nats.url],
      githubOrigin: new URL(github.url).origin,
      pools: [SIM_POOL],
      maxLanes: layout.capacity,
      ...(o.inventoryIntervalMs === undefined ? {} : { inventoryIntervalMs: o.inventoryIntervalMs }),
      ...(o.healthIntervalMs === undefined ? {} : { healthIntervalMs: o.healthIntervalMs }),
    };
    const t0 = Date.now();
    const workers = await SimWorkers.start({ workers: o.workers, hosts, common, githubWebUrl: github.url, logPath: join(o.dir, "workers.log") });
    cleanup.push(() => workers.stop());
    log(`${hosts.length} hosts initialized (lanekeeper-agent init) in ${o.workers} worker process(es), ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const policyPath = join(o.dir, "lanekeeper.yaml");
    const auditPath = join(o.dir, "audit.jsonl");
    await writeFile(
      policyPath,
      simPolicyText(layout, workers.enrollments, {
        githubApiUrl: github.apiUrl,
        githubWebUrl: github.url,
        githubTokenEnv: TOKEN_ENV,
        natsUrl: nats.url,
        natsUser: COORDINATOR_USER,
        natsPasswordEnv: NATS_PASSWORD_ENV,
        keyFile: join(o.dir, "coordinator.key"),
        auditFile: auditPath,
        ...(o.applyConcurrency === undefined ? {} : { applyConcurrency: o.applyConcurrency }),
        ...(o.reconcileIntervalMs === undefined ? {} : { reconcileIntervalMs: o.reconcileIntervalMs }),
      }),
      { mode: 0o644 },
    );
    const env: Record<string, string> = { [TOKEN_ENV]: github.token, [NATS_PASSWORD_ENV]: coordinatorPassword, LANEKEEPER_POLICY: policyPath };

    const cli = async (args: readonly string[], opts: { timeoutMs?: number; env?: Readonly<Record<string, string>> } = {}): Promise<SimCliResult> => {
      const started = Date.now();
      const child = spawn(process.execPath, [...coordinatorNodeArgs(), SIM_COORDINATOR_BIN, ...args], {
        cwd: o.dir,
        env: { ...process.env, ...env, ...opts.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      let peak = 0;
      const sampler = setInterval(() => {
        void procStatusMb(child.pid, "VmHWM").then((mb) => (peak = Math.max(peak, mb)));
      }, 100);
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 1_800_000);
      const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
      clearInterval(sampler);
      clearTimeout(timer);
      return { code, stdout, stderr, ms: Date.now() - started, peakRssMb: peak };
    };

    const rootKey = join(o.dir, "root.key");
    const root = await cli(["keys", "root-init", "--out", rootKey, "--json"]);
    if (root.code !== 0) throw new Error(`lanekeeper keys root-init exited ${root.code}: ${root.stderr.trim()}`);
    const keys = await cli(["keys", "generate", "--root-public-key", `${rootKey}.pub`, "--json"]);
    const trustFile = (JSON.parse(keys.stdout.trim() || "{}") as { trustFile?: string }).trustFile;
    if (keys.code !== 0 || typeof trustFile !== "string") throw new Error(`lanekeeper keys generate exited ${keys.code}: ${keys.stderr.trim()}`);

    const t1 = Date.now();
    const started = await workers.startHosts(trustFile);
    log(`${started.hosts} agents running and listening on NATS in ${((Date.now() - t1) / 1000).toFixed(1)} s (workers ${started.workerRssMb.map((m) => m.toFixed(0)).join("/")} MB)`);

    const serves: SimServe[] = [];
    cleanup.push(async () => Promise.all(serves.map((s) => s.stop())));
    const sim: FleetSimulation = {
      layout,
      github,
      nats,
      natsMonitorUrl: `http://127.0.0.1:${monitorPort}`,
      workers,
      policyPath,
      auditPath,
      env,
      cli,
      serve(args, extraEnv = {}) {
        const child = spawn(process.execPath, [...coordinatorNodeArgs(), SIM_COORDINATOR_BIN, "serve", ...args], {
          cwd: o.dir,
          env: { ...process.env, ...env, ...extraEnv },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let err = "";
        child.stdout?.resume();
        child.stderr?.on("data", (d: Buffer) => {
          err += d.toString();
          if (err.length > 4_000_000) err = err.slice(-2_000_000);
        });
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        const s: SimServe = {
          child,
          rssMb: () => procStatusMb(child.pid, "VmRSS"),
          peakRssMb: () => procStatusMb(child.pid, "VmHWM"),
          stderr: () => err,
          async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill("SIGTERM");
            const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
            await exited;
            clearTimeout(t);
          },
        };
        serves.push(s);
        return s;
      },
      async natsMessages() {
        const v = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as { in_msgs: number; out_msgs: number };
        return { in: v.in_msgs, out: v.out_msgs };
      },
      stop: undo,
    };
    return sim;
  } catch (err) {
    await undo();
    throw err;
  }
}
