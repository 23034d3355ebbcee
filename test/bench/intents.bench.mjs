#!/usr/bin/env node
// Signed intents through a real nats-server (JetStream, lanekeeper's per-host permissions) to real agent
// Intakes with a no-op executor: full verification (signature, strict decode, audience/subject, time window),
// replay reservation persisted to a real state file before "execution" (group commit: temp, fsync, rename,
// fsync dir), signed result, and result verification at the coordinator. The coordinator (Dispatcher, KV
// sequences) runs in the main thread, the agents in a worker thread, nats-server in its own process.
//
// Phases: one agent, then 20 agents (intents spread round-robin). Each phase runs BENCH_CONCURRENCY intents in
// flight for BENCH_MS (throughput, and the round trip of those intents under that load), then 300 intents one at
// a time (the unloaded round trip). Prints a table, then exactly one JSON line:
// {"intents_per_s", "rtt_ms_p50", "rtt_ms_p99", "intents_per_s_20_agents", "rtt_ms_p99_20_agents",
//  "unloaded_ms_p99", "cpu_us_per_intent", "ed25519_sign_us", "ed25519_verify_us", "loadavg_1m"}
// (the rtt figures are those of the loaded run; unloaded_ms_p99 is one in flight, 1 agent; cpu_us_per_intent is
// this process's CPU time (coordinator and agent threads, not nats-server) per intent of the loaded 1-agent run,
// a figure that moves less than throughput on a shared machine; ed25519_sign_us and ed25519_verify_us are the CPU
// time of one node:crypto Ed25519 sign and verify of an intent-sized message on this machine: every intent costs
// two of each, the floor under cpu_us_per_intent; loadavg_1m is the machine's load at the end). Env: BENCH_MS (default 5000), BENCH_CONCURRENCY (default 32),
// BENCH_SEQ_BLOCK (sequences leased per KV compare-and-set, default 256), BENCH_STATE=memory (no persistence,
// to see what the fsyncs cost; not a production mode).
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const root = new URL("../..", import.meta.url).pathname;
const DURATION_MS = Number(process.env.BENCH_MS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SEQ_BLOCK = Number(process.env.BENCH_SEQ_BLOCK ?? 256);
const LANES_PER_AGENT = 64;

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

function ensureBuilt() {
  const pkgs = ["packages/shared", "packages/agent", "packages/coordinator", "test/harness"];
  const stale = pkgs.some((p) => {
    const dist = join(root, p, "dist/index.js");
    return !existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(root, p, "src"));
  });
  if (stale) {
    console.error("building packages ...");
    execFileSync(join(root, "node_modules/.bin/tsc"), ["-b", ...pkgs.map((p) => join(root, p))], { stdio: "inherit" });
  }
}

const load = async () => ({
  lk: await import(join(root, "packages/shared/dist/index.js")),
  agent: await import(join(root, "packages/agent/dist/index.js")),
  coord: await import(join(root, "packages/coordinator/dist/index.js")),
  nats: await import("nats"),
});

// ------------------------------------------------------------------------------------------------ agents

if (!isMainThread) {
  const { lk, agent, nats } = await load();
  const { url, keySet, hosts } = workerData;
  const running = [];
  /** Every lane exists and is owned: the executor does nothing, so the pipeline is what is measured. */
  const noop = {
    async inspect(laneId) {
      return {
        ownership: "owned",
        held: false,
        observed: lk.LaneObservation.fromPartial({ laneId, scope: "acme/api", pool: "linux-x64", backend: lk.Backend.BACKEND_SYSTEMD }),
      };
    },
    async managedLaneCount() {
      return 0;
    },
    async execute() {
      return {};
    },
  };
  for (const h of hosts) {
    const dir = await mkdtemp(join(tmpdir(), `lk-bench-${h.hostId}-`));
    await mkdir(join(dir, "etc"));
    const trustFile = join(dir, "etc", "trust.json");
    await writeFile(trustFile, lk.formatTrustFile(lk.TrustedKeySet.fromJSON(keySet)));
    // BENCH_STATE=memory replaces the state file with a journaled store that persists nothing, to show what
    // the fsyncs cost (never a production mode).
    const store =
      process.env.BENCH_STATE === "memory"
        ? {
            load: async () => ({ kind: "ok", state: { formatVersion: 1, hostId: h.hostId, hwm: 0, keysetVersion: 0, recent: [] } }),
            save: async () => {},
            appendJournal: async () => {},
            writeSnapshot: async () => {},
            lock: async () => {},
            unlock: async () => {},
          }
        : new agent.FileStateStore(join(dir, "state"), h.hostId);
    if (store instanceof agent.FileStateStore) await store.initialize();
    await store.lock();
    const replay = await agent.ReplayStore.open(store, { hostId: h.hostId, clock: lk.systemClock });
    const trust = await agent.AgentTrust.load({ trustFile, stateDir: join(dir, "state"), recordedVersion: 0, clock: lk.systemClock });
    const nc = await nats.connect({ servers: url, user: h.user, pass: h.password });
    const intake = new agent.Intake({
      hostId: h.hostId,
      identityKey: lk.signingKeyFromPem(h.identityPem),
      sealingKey: lk.sealingKeyFromPem(h.sealingPem),
      trust,
      replay,
      executor: noop,
      control: {
        enabled: true,
        scopes: ["acme/api"],
        pools: ["linux-x64"],
        backends: ["systemd"],
        actions: ["stop", "start", "drain", "undrain"],
        images: [],
        maxLanes: 1000,
        githubOrigins: [],
      },
    });
    intake.listen(nc);
    await nc.flush();
    running.push({ dir, nc, intake, replay, store });
  }
  parentPort.postMessage({ ready: true });
  parentPort.on("message", async (m) => {
    if (m !== "stop") return;
    let hwm = 0;
    for (const r of running) {
      await r.intake.close();
      hwm += r.replay.hwm;
      await r.replay.close();
      await r.store.unlock();
      await r.nc.close();
      await rm(r.dir, { recursive: true, force: true });
    }
    parentPort.postMessage({ stopped: true, hwm });
  });
} else {
  await main();
}

// ----------------------------------------------------------------------------------------- coordinator

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function phase(name, agentCount, mods) {
  const { lk, coord, nats } = mods;
  const { startNatsServer } = await import(join(root, "test/harness/dist/index.js"));
  const pw = () => randomBytes(18).toString("base64url");
  const hostIds = Array.from({ length: agentCount }, (_, i) => `bench${String(i).padStart(2, "0")}`);
  const agentUsers = hostIds.map((hostId) => ({ hostId, user: `agent-${hostId}`, password: pw() }));
  const coordinatorUser = { user: "coordinator", password: pw() };
  const server = await startNatsServer({ users: { agents: agentUsers, coordinator: coordinatorUser } });
  let worker;
  let nc;
  try {
    const coordinatorKey = lk.generateSigningKey();
    const keySet = coord.initialKeySet(coordinatorKey, lk.generateSigningKey(), { nowMs: Date.now() - 60_000 });
    const hostKeys = agentUsers.map((u) => ({ ...u, identity: lk.generateSigningKey(), sealing: lk.generateSealingKey() }));
    worker = new Worker(new URL(import.meta.url), {
      workerData: {
        url: server.url,
        keySet: lk.TrustedKeySet.toJSON(keySet),
        hosts: hostKeys.map((h) => ({
          hostId: h.hostId,
          user: h.user,
          password: h.password,
          identityPem: lk.signingKeyToPem(h.identity),
          sealingPem: lk.sealingKeyToPem(h.sealing),
        })),
      },
    });
    await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    // As the coordinator connects (natsOptionsFromPolicy): no per-request stack traces.
    nc = await nats.connect({ servers: server.url, user: coordinatorUser.user, pass: coordinatorUser.password, noAsyncTraces: true });
    const sequences = await coord.KvSequenceAllocator.open(nc.jetstream(), { block: SEQ_BLOCK });
    const hosts = new coord.StaticHostRegistry(hostKeys.map((h) => ({ hostId: h.hostId, identityKey: h.identity.publicKey, sealingKey: h.sealing.publicKey })));
    const dispatcher = new coord.Dispatcher({ nc, signingKey: coordinatorKey, sequences, hosts, requestTimeoutMs: 10_000 });

    const kinds = ["stop", "start", "drain", "undrain"];
    let n = 0;
    const one = async () => {
      const i = n++;
      const hostId = hostIds[i % hostIds.length];
      const laneId = `lane-${Math.floor(i / hostIds.length) % LANES_PER_AGENT}`;
      const t0 = performance.now();
      const out = await dispatcher.dispatch({ hostId, action: { kind: kinds[i % kinds.length], laneId }, attempts: 1 });
      const dt = performance.now() - t0;
      if (out.result.status !== lk.ResultStatus.RESULT_STATUS_OK) throw new Error(`intent refused: ${out.result.reasonCode}`);
      return dt;
    };
    // Warm-up (JIT, KV bucket, first leases).
    for (let i = 0; i < 200; i++) await one();
    n = 0;
    const rtts = [];
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let done = 0;
    const loop = async () => {
      while (performance.now() - start < DURATION_MS) {
        rtts.push(await one());
        done++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    const elapsed = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    // Unloaded round trip, one intent at a time.
    const solo = [];
    for (let i = 0; i < 300; i++) solo.push(await one());
    rtts.sort((a, b) => a - b);
    solo.sort((a, b) => a - b);
    const stopped = new Promise((resolve) => worker.on("message", (m) => m.stopped && resolve(m)));
    worker.postMessage("stop");
    const { hwm } = await stopped;
    return {
      name,
      agents: agentCount,
      intents: done,
      perS: Math.round((done * 1000) / elapsed),
      p50: percentile(rtts, 50),
      p99: percentile(rtts, 99),
      soloP50: percentile(solo, 50),
      soloP99: percentile(solo, 99),
      persistedHwmSum: hwm,
      cpuUsPerIntent: (cpu.user + cpu.system) / done,
    };
  } finally {
    await nc?.close().catch(() => undefined);
    await worker?.terminate().catch(() => undefined);
    await server.stop();
  }
}

/** CPU microseconds of one Ed25519 sign and one verify (node:crypto, KeyObjects made once) of a 300-byte message. */
function ed25519Cost() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const msg = randomBytes(300);
  const sig = sign(null, msg, privateKey);
  const n = 2000;
  const time = (f) => {
    for (let i = 0; i < 200; i++) f();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  return { signUs: time(() => sign(null, msg, privateKey)), verifyUs: time(() => verify(null, msg, publicKey, sig)) };
}

async function main() {
  ensureBuilt();
  const ed = ed25519Cost();
  const mods = await load();
  const one = await phase("1 agent", 1, mods);
  const twenty = await phase("20 agents", 20, mods);
  const f = (x) => x.toFixed(2);
  console.log(`intents through nats-server, no-op executor, ${CONCURRENCY} in flight, ${DURATION_MS} ms per phase, sequence block ${SEQ_BLOCK}`);
  console.log("phase       intents  intents/s  rtt p50 ms  rtt p99 ms  unloaded p50  unloaded p99");
  for (const r of [one, twenty]) {
    console.log(
      `${r.name.padEnd(10)} ${String(r.intents).padStart(8)} ${String(r.perS).padStart(10)} ${f(r.p50).padStart(11)} ${f(r.p99).padStart(11)} ${f(r.soloP50).padStart(13)} ${f(r.soloP99).padStart(13)}`,
    );
  }
  console.log(
    JSON.stringify({
      intents_per_s: one.perS,
      rtt_ms_p50: Number(f(one.p50)),
      rtt_ms_p99: Number(f(one.p99)),
      intents_per_s_20_agents: twenty.perS,
      rtt_ms_p99_20_agents: Number(f(twenty.p99)),
      unloaded_ms_p99: Number(f(one.soloP99)),
      cpu_us_per_intent: Math.round(one.cpuUsPerIntent),
      ed25519_sign_us: Number(ed.signUs.toFixed(1)),
      ed25519_verify_us: Number(ed.verifyUs.toFixed(1)),
      loadavg_1m: Number(loadavg()[0].toFixed(2)),
    }),
  );
}
