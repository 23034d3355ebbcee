// The real `lanekeeper-agent run` against a real nats-server: `status` (JSON and text) says which agent answered,
// shows the NATS connection (connected; after the server stops, disconnected or reconnecting with the last error;
// connected again after it returns) and whether a trust file is loaded; the agent logs the connection changes.
// A second agent without a trust file says so loudly. Uses the built packages (npm run build).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { AgentStatusReport, formatTrustFile, generateSigningKey } from "@lanekeeper/shared";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initialKeySet } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";
import { makeTempDir, waitUntil } from "../harness/src/process-util.js";

const BIN = new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url).pathname;
const run = promisify(execFile);

interface Agent {
  readonly hostId: string;
  readonly config: string;
  readonly proc: ChildProcess;
  log: string;
}

let dir: string;
let nats: NatsServerHandle;
const agents: Agent[] = [];

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

async function status(a: Agent): Promise<AgentStatusReport> {
  const r = await cli(["status", "--config", a.config, "--json", "--audit", "0"]);
  expect(r.code, r.stderr).toBe(0);
  return AgentStatusReport.fromJSON(JSON.parse(r.stdout));
}

async function startAgent(hostId: string, opts: { trust: boolean }): Promise<Agent> {
  const root = join(dir, hostId);
  const config = join(root, "agent.yaml");
  const stateDir = join(root, "state");
  const init = await cli(["init", "--host-id", hostId, "--config", config, "--state-dir", stateDir]);
  expect(init.code, init.stderr).toBe(0);
  const doc = parse(await readFile(config, "utf8")) as Record<string, unknown>;
  const trustFile = join(root, "trust.json");
  if (opts.trust) await writeFile(trustFile, formatTrustFile(initialKeySet(generateSigningKey(), generateSigningKey(), { nowMs: Date.now() - 60_000 })));
  Object.assign(doc, {
    nats: { url: nats.url },
    trustFile,
    // Not the default under /run/lanekeeper: the test must not touch the machine's run directory.
    statusSocket: join(root, "run", "agent.sock"),
    unitDir: join(root, "units"),
    runnerDistPath: join(root, "dist"),
    runAsUser: "root",
    containerSocket: join(root, "no-engine.sock"),
    inventoryIntervalMs: 1000,
  });
  await writeFile(config, stringify(doc));
  const proc = spawn(process.execPath, [BIN, "run", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  const agent: Agent = { hostId, config, proc, log: "" };
  proc.stdout?.on("data", (d: Buffer) => (agent.log += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (agent.log += d.toString()));
  agents.push(agent);
  await waitUntil(async () => (await cli(["status", "--config", config, "--json"])).code === 0, { timeoutMs: 60_000, what: `${hostId} answering status` });
  return agent;
}

let a: Agent;
let b: Agent;

beforeAll(async () => {
  dir = await makeTempDir("lk-status-nats-");
  nats = await startNatsServer({ jetstream: false });
  a = await startAgent("build11", { trust: true });
  b = await startAgent("build12", { trust: false });
}, 180_000);

afterAll(async () => {
  for (const x of agents) x.proc.kill("SIGKILL");
  await nats?.stop();
}, 60_000);

describe("lanekeeper-agent status tells the agent's own problems", () => {
  it("says which agent answered and shows the NATS connection as connected, with the trust file loaded", async () => {
    const r = await waitUntil(async () => {
      const s = await status(a);
      return s.nats?.state === "connected" ? s : undefined;
    }, { timeoutMs: 60_000, what: "connected" });
    expect(r.hostId).toBe("build11");
    expect(r.pid).toBe(a.proc.pid);
    expect(r.configPath).toBe(a.config);
    expect(r.statusSocket).toBe(join(dir, "build11", "run", "agent.sock"));
    expect(r.nats).toMatchObject({ state: "connected", server: nats.url, reconnects: 0 });
    expect(r.natsState).toBe("connected");
    expect(r.trust).toMatchObject({ loaded: true, trustFile: join(dir, "build11", "trust.json") });
    const text = (await cli(["status", "--config", a.config])).stdout;
    expect(text).toContain(`answered by: pid ${a.proc.pid}  config ${a.config}`);
    expect(text).toContain(`nats: connected to ${nats.url}`);
    expect(text).toContain("trust: key set version 1");
    expect(text).toContain("allowlist: scopes -  pools -  backends -  actions -  images -  max lanes 0");
    expect(a.log).toContain('"msg":"NATS connected"');
  });

  it("shows disconnected or reconnecting with the last error while nats-server is down, and recovers", async () => {
    await nats.halt();
    const down = await waitUntil(async () => {
      const s = await status(a);
      return s.nats?.state === "reconnecting" && s.nats.lastError.startsWith("cannot reach") ? s : undefined;
    }, { timeoutMs: 60_000, what: "reconnecting with a failed attempt" });
    expect(down.nats?.lastError).toMatch(/^cannot reach nats:\/\/127\.0\.0\.1:\d+ \(reconnect attempt \d+ failed\)$/);
    const text = (await cli(["status", "--config", a.config])).stdout;
    expect(text).toMatch(/nats: (reconnecting|disconnected) \(nats:\/\/127\.0\.0\.1:\d+\) for /);
    expect(text).toMatch(/ {2}last error \(\d+s ago\): (cannot reach|lost the connection)/);
    expect(a.log).toContain("NATS disconnected");
    await nats.resume();
    const up = await waitUntil(async () => {
      const s = await status(a);
      return s.nats?.state === "connected" ? s : undefined;
    }, { timeoutMs: 60_000, what: "reconnected" });
    expect(up.nats?.reconnects).toBe(1);
    expect(a.log).toContain('"msg":"NATS reconnected"');
  });

  it("says loudly when no trust file is loaded", async () => {
    const r = await status(b);
    expect(r.trust).toMatchObject({ loaded: false, trustFile: join(dir, "build12", "trust.json") });
    expect(r.trust?.error).toContain("does not exist");
    const text = (await cli(["status", "--config", b.config])).stdout;
    expect(text).toContain("TRUST: NO TRUSTED KEY SET: EVERY INTENT IS REFUSED (UNKNOWN_KEY).");
    expect(text).toContain(`install the coordinator's trust file (<keyFile>.keyset.json, written by lanekeeper keys generate) as ${join(dir, "build12", "trust.json")}`);
  });
});
