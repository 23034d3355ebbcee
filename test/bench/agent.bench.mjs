// Benchmark of lanekeeper-agent (npm run bench:agent; needs `npm run build`):
//  - idle RSS and CPU of a real `lanekeeper-agent run` process (inside a real systemd sandbox, like production)
//    supervising 20 systemd lanes, each running the runner emulator connected to the GitHub emulator, with a
//    real nats-server for its inventory; default health interval (1 s) and inventory interval (5 s);
//  - time from a runner's death (SIGKILL of its Runner.Listener) to the agent starting its restart (the
//    `health-restart` `started` audit record), p50 and max over several trials on different lanes.
// Prints a table, then exactly one JSON line as the last line.
import { execFile } from "node:child_process";
import { appendFile, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { AuditLog, Backend, LaneMode, identityLabels, signingKeyFromPem } from "@lanekeeper/shared";
import { runnerEmulatorDir, startGitHubEmulator, startNatsServer, startSystemdSandbox } from "@lanekeeper/harness";
import { LaneDirectories, LaneManager, MarkerSigner, SystemdRuntime } from "../../packages/agent/dist/index.js";
import { cp, mkdir } from "node:fs/promises";

const LANES = Number(process.env.LK_BENCH_LANES ?? 20);
const IDLE_WINDOW_MS = Number(process.env.LK_BENCH_IDLE_MS ?? 20_000);
const TRIALS = Number(process.env.LK_BENCH_TRIALS ?? 8);
const HOST = "bench01";
const BIN = fileURLToPath(new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url));
const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = 100;

async function until(fn, what, timeoutMs = 120_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function procTimes(pid) {
  const text = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function childPid(pid) {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  return Number(text.trim().split(/\s+/)[0]) || undefined;
}

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const gh = await startGitHubEmulator({ repos: ["acme/api"] });
const nats = await startNatsServer({ jetstream: false });
const sd = await startSystemdSandbox();
let agent;
try {
  const root = join(sd.root, "agent");
  const config = join(root, "agent.yaml");
  const stateDir = join(root, "state");
  const socket = join(root, "run", "agent.sock");
  await run(process.execPath, [BIN, "init", "--host-id", HOST, "--config", config, "--state-dir", stateDir]);
  const dist = join(root, "dist");
  await mkdir(dist, { recursive: true });
  await cp(runnerEmulatorDir, join(dist, "2.336.0"), { recursive: true });
  let cfg = await readFile(config, "utf8");
  cfg = cfg.replace(/^  url: .*$/m, `  url: ${nats.url}`);
  await writeFile(config, cfg);
  await appendFile(config, `unitDir: ${sd.unitDir}\nrunAsUser: root\nrunnerDistPath: ${dist}\nstatusSocket: ${socket}\n`);
  const laneRoot = /^laneRoot: (.*)$/m.exec(cfg)[1];

  // Create the lanes with the agent's own key before the agent starts (intents are not part of this benchmark).
  const key = signingKeyFromPem(await readFile(join(stateDir, "identity.key"), "utf8"));
  const signer = new MarkerSigner(HOST, key);
  const dirs = new LaneDirectories(laneRoot, signer);
  const audit = await AuditLog.open(join(stateDir, "audit.log"), { mode: 0o600 });
  const systemctl = { run: async (argv, o) => ({ ...(await sd.exec(argv[0], argv.slice(1), { timeoutMs: o.timeoutMs })), signal: null }) };
  const rt = new SystemdRuntime({ hostId: HOST, unitDir: sd.unitDir, signer, dirs, runnerDistPath: dist, user: { name: "root", uid: 0, gid: 0, home: "/root" }, systemctl, cgroupRoots: [sd.cgroupPath] });
  const lanes = new LaneManager({ hostId: HOST, stateDir, dirs, runtimes: { systemd: rt }, audit, health: { maxRestarts: 5, windowMs: 600_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 }, auditSource: `agent:${HOST}` });
  const ids = Array.from({ length: LANES }, (_, i) => `b${String(i).padStart(2, "0")}`);
  const t0 = Date.now();
  for (let i = 0; i < ids.length; i += 4) {
    await Promise.all(
      ids.slice(i, i + 4).map(async (laneId) => {
        const res = await fetch(`${gh.apiUrl}/repos/acme/api/actions/runners/registration-token`, { method: "POST", headers: { authorization: `token ${gh.token}` } });
        const { token } = await res.json();
        await lanes.create({
          spec: {
            laneId,
            scope: "acme/api",
            pool: "bench",
            backend: Backend.BACKEND_SYSTEMD,
            mode: LaneMode.LANE_MODE_PERSISTENT,
            labels: identityLabels({ laneId, hostId: HOST, pool: "bench" }),
            runnerGroup: "",
            githubUrl: gh.webUrl("acme/api"),
            runnerVersion: "2.336.0",
            image: "",
            limits: { cpuMillis: 0, memoryBytes: 0 },
          },
          registrationToken: Buffer.from(token),
        });
      }),
    );
  }
  await audit.close();
  const createMs = Date.now() - t0;
  await until(async () => (await gh.control.listRunners()).filter((r) => r.status === "online").length === LANES, "all runners online");

  // The agent, inside the sandbox like a production agent, with default intervals.
  agent = sd.spawn(process.execPath, [BIN, "run", "--config", config], { stdio: ["ignore", "ignore", "ignore"] });
  await until(async () => (await stat(socket).catch(() => undefined))?.isSocket(), "status socket");
  const agentPid = await until(() => childPid(agent.pid), "agent pid");
  // Let start-up (recovery, first inventory, capabilities) settle before measuring idle.
  await sleep(5_000);
  const cpu0 = await procTimes(agentPid);
  const w0 = Date.now();
  const rssSamples = [];
  while (Date.now() - w0 < IDLE_WINDOW_MS) {
    rssSamples.push(await rssMb(agentPid));
    await sleep(1000);
  }
  const cpu1 = await procTimes(agentPid);
  const idleCpuPct = ((cpu1 - cpu0) / CLK_TCK / ((Date.now() - w0) / 1000)) * 100;
  const idleRss = Math.max(...rssSamples);

  // Restart latency: kill -9 one lane's listener per trial (a different lane each time, so each restart is the
  // lane's first in the window and backoff does not apply), time to the health-restart "started" record.
  const auditPath = join(stateDir, "audit.log");
  const latencies = [];
  for (let t = 0; t < TRIALS; t++) {
    const laneId = ids[t % ids.length];
    const unit = `lanekeeper-lane-${laneId}.service`;
    let listener;
    for (const pid of await sd.unitHostPids(unit)) {
      if ((await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim() === "Runner.Listener") listener = pid;
    }
    if (!listener) throw new Error(`no listener in ${unit}`);
    const before = (await readFile(auditPath, "utf8")).split("\n").filter(Boolean).length;
    const killedAt = Date.now();
    process.kill(listener, "SIGKILL");
    const rec = await until(async () => {
      const lines = (await readFile(auditPath, "utf8")).split("\n").filter(Boolean).slice(before);
      return lines.map((l) => JSON.parse(l)).find((r) => r.action === "health-restart" && r.phase === "started" && r.laneId === laneId);
    }, `restart of ${laneId}`, 30_000);
    latencies.push(rec.at - killedAt);
    await until(async () => (await sd.unitProperties(unit, ["ActiveState"])).ActiveState === "active", `${unit} active`, 30_000);
    await sleep(300);
  }

  const result = {
    idle_rss_mb: Math.round(idleRss * 10) / 10,
    idle_cpu_pct: Math.round(idleCpuPct * 100) / 100,
    restart_start_ms_p50: percentile(latencies, 50),
    restart_start_ms_max: Math.max(...latencies),
  };
  const rows = [
    ["setup", `${LANES} systemd lanes (runner emulator, online on the GitHub emulator), agent in a systemd sandbox, nats-server`],
    ["lanes created in", `${createMs} ms (4 at a time)`],
    ["idle window", `${IDLE_WINDOW_MS} ms, health every 1 s, inventory every 5 s`],
    ["idle RSS (max)", `${result.idle_rss_mb} MB (target <= 120)`],
    ["idle CPU", `${result.idle_cpu_pct} % of one core`],
    ["restart trials", `${TRIALS}: ${latencies.join(", ")} ms`],
    ["restart started p50", `${result.restart_start_ms_p50} ms (target <= 2000)`],
    ["restart started max", `${result.restart_start_ms_max} ms`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`lanekeeper-agent benchmark\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  agent?.kill("SIGTERM");
  await sleep(1000);
  await sd.stop();
  await nats.stop();
  await gh.stop();
}
