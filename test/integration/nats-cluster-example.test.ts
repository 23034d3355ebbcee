// install/nats-cluster.example.conf, started as it ships: three nats-servers from the one file, changing only what
// its header says to change per node (server_name, routes) and what a machine decides (addresses, ports, store
// directory, passwords). They must form one JetStream cluster where the coordinator's login creates a 3-replica KV
// bucket, the agents' logins have the same permissions as in nats-server.example.conf and no JetStream, and the
// permission lines are those renderNatsConfig (the harness, every other test) uses.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderNatsConfig, runCommand, terminate, waitUntil } from "@lanekeeper/harness";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const EXAMPLE = fileURLToPath(new URL("../../install/nats-cluster.example.conf", import.meta.url));
const SINGLE = fileURLToPath(new URL("../../install/nats-server.example.conf", import.meta.url));
const PASSWORDS = { coordinator: randomBytes(12).toString("hex"), build01: randomBytes(12).toString("hex"), build02: randomBytes(12).toString("hex"), route: randomBytes(12).toString("hex") };

let dir: string;
const procs: ChildProcess[] = [];
const clientPorts: number[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

/** Node `i`'s config: the example with only the per-node and per-machine values replaced. */
function nodeConfig(example: string, i: number, routePorts: readonly number[], storeDir: string): string {
  const others = routePorts.filter((_, j) => j !== i).map((p) => `    "nats-route://route:${PASSWORDS.route}@127.0.0.1:${p}"`);
  const out = example
    .replace('server_name: "nats1"', `server_name: "nats${i + 1}"`)
    .replace('listen: "0.0.0.0:4222"', `listen: "127.0.0.1:${clientPorts[i]}"`)
    .replace('http: "127.0.0.1:8222"', "")
    .replace('listen: "0.0.0.0:6222"', `listen: "127.0.0.1:${routePorts[i]}"`)
    .replace(/routes: \[\n[^\]]*\]/, `routes: [\n${others.join("\n")}\n  ]`)
    .replace('store_dir: "/var/lib/nats/jetstream"', `store_dir: ${JSON.stringify(storeDir)}`)
    .replaceAll("REPLACE_WITH_THE_ROUTE_PASSWORD", PASSWORDS.route)
    .replace("$2a$11$REPLACE_WITH_THE_BCRYPT_HASH_OF_THE_COORDINATOR_PASSWORD", PASSWORDS.coordinator)
    .replace("$2a$11$REPLACE_WITH_THE_BCRYPT_HASH_OF_THE_BUILD01_PASSWORD", PASSWORDS.build01)
    .replace("$2a$11$REPLACE_WITH_THE_BCRYPT_HASH_OF_THE_BUILD02_PASSWORD", PASSWORDS.build02);
  const settings = out
    .split("\n")
    .filter((l) => !l.trimStart().startsWith("#"))
    .join("\n");
  expect(settings).not.toMatch(/REPLACE_WITH|example\.internal|0\.0\.0\.0/);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-nats-cluster-example-"));
  const example = await readFile(EXAMPLE, "utf8");
  const routePorts = [await freePort(), await freePort(), await freePort()];
  for (let i = 0; i < 3; i++) clientPorts.push(await freePort());
  for (let i = 0; i < 3; i++) {
    const store = join(dir, `store${i + 1}`);
    await mkdir(store);
    const conf = join(dir, `nats${i + 1}.conf`);
    await writeFile(conf, nodeConfig(example, i, routePorts, store), { mode: 0o600 });
    procs.push(spawn("nats-server", ["-c", conf], { stdio: "ignore" }));
  }
  // Ready when every node answers the coordinator's JetStream requests (a meta leader was elected).
  for (const port of clientPorts) {
    await waitUntil(
      async () => {
        const nc = await connect({ servers: `nats://127.0.0.1:${port}`, user: "coordinator", pass: PASSWORDS.coordinator, reconnect: false, timeout: 2_000 });
        try {
          await (await nc.jetstreamManager({ timeout: 2_000 })).getAccountInfo();
          return true;
        } finally {
          await nc.close();
        }
      },
      { timeoutMs: 60_000, what: `the example cluster's node on ${port} to answer JetStream requests` },
    );
  }
}, 90_000);

afterAll(async () => {
  for (const p of procs) await terminate(p, { signal: "SIGTERM", graceMs: 10_000 });
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("install/nats-cluster.example.conf", () => {
  it("is valid for nats-server as shipped", async () => {
    const check = await runCommand("nats-server", ["-c", EXAMPLE, "-t"]);
    expect(check.code, check.stderr + check.stdout).toBe(0);
  });

  it("has the same accounts and permissions as nats-server.example.conf and renderNatsConfig", async () => {
    const example = await readFile(EXAMPLE, "utf8");
    const single = await readFile(SINGLE, "utf8");
    expect(example.slice(example.indexOf("accounts {"))).toBe(single.slice(single.indexOf("accounts {")));
    const rendered = renderNatsConfig({
      port: 4222,
      storeDir: "/var/lib/nats/jetstream",
      agents: [{ hostId: "build01", user: "agent-build01", password: "x" }],
      coordinator: { user: "coordinator", password: "y" },
    });
    const fragments = rendered
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^(publish|subscribe|allow_responses|limits|jetstream: enabled|\{ (service|stream))/.test(l));
    for (const f of fragments) expect(example).toContain(f);
  });

  it("forms one cluster: the coordinator creates a 3-replica bucket through any node; agents get no JetStream", async () => {
    const urls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
    const nc = await connect({ servers: urls, user: "coordinator", pass: PASSWORDS.coordinator });
    try {
      const kv = await nc.jetstream().views.kv("lk_example_check", { history: 1, replicas: 3 });
      await kv.put("k", new TextEncoder().encode("v"));
      const info = await (await nc.jetstreamManager()).streams.info("KV_lk_example_check");
      expect(info.config.num_replicas).toBe(3);
      expect(info.cluster?.replicas?.length).toBe(2);
    } finally {
      await nc.close();
    }
    for (const [i, url] of urls.entries()) {
      const agent = await connect({ servers: url, user: "agent-build01", pass: PASSWORDS.build01, reconnect: false });
      try {
        const usable = await agent.jetstreamManager({ timeout: 2_000 }).then(
          (m) => m.getAccountInfo().then(() => true),
          () => false,
        );
        expect(usable, `node ${i + 1}`).toBe(false);
      } finally {
        await agent.close();
      }
    }
  }, 60_000);
});
