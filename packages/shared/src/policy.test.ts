import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { generateSealingKey, generateSigningKey, publicKeyToPem } from "./keys.js";
import { parsePolicy, resolvePoolUpgrade } from "./policy.js";

const id1 = generateSigningKey().publicKey.toString("base64");
const id2 = publicKeyToPem(generateSigningKey().publicKey, "ed25519");
const seal1 = generateSealingKey().publicKey.toString("base64");
const seal2 = generateSealingKey().publicKey.toString("base64");
const digest = "b".repeat(64);

function policy(extra = ""): string {
  return `
github:
  auth: { tokenEnv: GITHUB_TOKEN }
coordinator:
  keyFile: /etc/lanekeeper/coordinator.key
  natsUrl: nats://127.0.0.1:4222
hosts:
  build01:
    enrolled: { identityKey: "${id1}", sealingKey: "${seal1}" }
    optIn: true
    capacity: 4
  build02:
    enrolled:
      identityKey: |
${id2.trim().split("\n").map((l) => `        ${l}`).join("\n")}
      sealingKey: "${seal2}"
    capacity: 2
scopes:
  acme/api: { optIn: true }
  "org:acme": { optIn: false, runnerGroup: linux }
pools:
  linux:
    labels: [linux, x64]
    backend: systemd
    runnerVersion: 2.330.0
  box:
    backend: container
    mode: ephemeral
    image: ghcr.io/acme/runner@sha256:${digest}
    limits: { cpuMillis: 2000, memoryBytes: 4294967296 }
lanes:
  - { scope: acme/api, pool: linux, count: 2, hosts: [build01] }
${extra}`;
}

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parsePolicy(text);
  } catch (err) {
    // These tests are about the rules; config-loader.test.ts checks where each issue is placed.
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => ({ path, message }));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("parsePolicy", () => {
  it("parses a policy with defaults, frozen", () => {
    const p = parsePolicy(policy());
    expect(p.github.apiUrl).toBe("https://api.github.com");
    expect(p.github.webUrl).toBe("https://github.com");
    expect(p.coordinator.intentTtlMs).toBe(60_000);
    expect(p.coordinator.drain).toEqual({ settleMs: 15_000, deadlineMs: 3_600_000, pollMs: 5000 });
    expect(p.hosts.build02!.optIn).toBe(false);
    expect(p.pools.box!.mode).toBe("ephemeral");
    expect(p.pools.linux!.mode).toBe("persistent");
    expect(p.lanes).toHaveLength(1);
    expect(Object.isFrozen(p.hosts.build01)).toBe(true);
    expect(Object.isFrozen(p.lanes[0]!.hosts)).toBe(true);
  });

  it("accepts GitHub App auth and an empty policy", () => {
    const p = parsePolicy(
      "github:\n  auth: { app: { appId: 1, privateKeyFile: /etc/lk/app.pem, installationId: 2 } }\ncoordinator: { keyFile: /k, natsUrl: 'nats://h' }\n",
    );
    expect(p.hosts).toEqual({});
    expect(p.lanes).toEqual([]);
  });

  it("takes one NATS server (natsUrl) or a cluster (natsServers), never both, and a replica count", () => {
    const head = "github:\n  auth: { tokenEnv: GITHUB_TOKEN }\ncoordinator:\n  keyFile: /k\n";
    const one = parsePolicy(`${head}  natsUrl: nats://a:4222\n`);
    expect(one.coordinator.natsServers).toEqual(["nats://a:4222"]);
    expect(one.coordinator.natsUrl).toBe("nats://a:4222");
    expect(one.coordinator.jetstreamReplicas).toBe(1);
    const three = parsePolicy(`${head}  natsServers: [nats://a:4222, nats://b:4222, nats://c:4222]\n  jetstreamReplicas: 3\n`);
    expect(three.coordinator.natsServers).toEqual(["nats://a:4222", "nats://b:4222", "nats://c:4222"]);
    expect(three.coordinator.natsUrl).toBe("nats://a:4222");
    expect(three.coordinator.jetstreamReplicas).toBe(3);
    expect(issuesOf(`${head}  natsUrl: nats://a\n  natsServers: [nats://b]\n`)).toEqual([
      { path: "coordinator.natsServers", message: "give natsUrl (one server) or natsServers (a cluster), exactly one of them" },
    ]);
    expect(issuesOf(head)[0]!.path).toBe("coordinator.natsUrl");
    expect(issuesOf(`${head}  natsServers: []\n`)[0]!.path).toBe("coordinator.natsServers");
    expect(issuesOf(`${head}  natsServers: [nats://a, nats://a]\n`)[0]!.path).toBe("coordinator.natsServers[1]");
    expect(issuesOf(`${head}  natsServers: ["nats://u:p@a"]\n`)[0]!.path).toBe("coordinator.natsServers[0]");
    expect(issuesOf(`${head}  natsUrl: nats://a\n  jetstreamReplicas: 6\n`)[0]!.path).toBe("coordinator.jetstreamReplicas");
  });

  it("requires hosts to opt in, with a precise message", () => {
    const issues = issuesOf(policy("  - { scope: acme/api, pool: box, count: 1, hosts: [build01, build02] }\n"));
    expect(issues).toEqual([
      {
        path: "lanes[1].hosts[1]",
        message: 'host "build02" has not opted in; set hosts.build02.optIn: true to let lanes use it',
      },
    ]);
  });

  it("requires scopes to exist and opt in", () => {
    expect(issuesOf(policy('  - { scope: "org:acme", pool: linux, count: 1, hosts: [build01] }\n'))).toEqual([
      {
        path: "lanes[1].scope",
        message: 'scope "org:acme" has not opted in; set scopes["org:acme"].optIn: true to let lanes register there',
      },
    ]);
    expect(issuesOf(policy("  - { scope: acme/web, pool: linux, count: 1, hosts: [build01] }\n"))[0]).toEqual({
      path: "lanes[1].scope",
      message: 'scope "acme/web" is not declared under scopes',
    });
  });

  it("checks pools, hosts and capacity referenced by lanes", () => {
    expect(issuesOf(policy("  - { scope: acme/api, pool: gpu, count: 1, hosts: [build01] }\n"))[0]!.path).toBe("lanes[1].pool");
    expect(issuesOf(policy("  - { scope: acme/api, pool: box, count: 1, hosts: [build09] }\n")).map((i) => i.path)).toEqual([
      "lanes[1].hosts[0]",
      "lanes[1].count",
    ]);
    expect(issuesOf(policy("  - { scope: acme/api, pool: box, count: 5, hosts: [build01] }\n"))[0]).toEqual({
      path: "lanes[1].count",
      message: "5 lanes do not fit: the listed opted-in hosts have a total capacity of 4",
    });
    expect(issuesOf(policy("  - { scope: acme/api, pool: linux, count: 1, hosts: [build01] }\n"))[0]!.path).toBe("lanes[1]");
    expect(issuesOf(policy("  - { scope: acme/api, pool: box, count: 1, hosts: [build01, build01] }\n"))[0]!.path).toBe(
      "lanes[1].hosts[1]",
    );
  });

  it("enforces backend-specific pool fields", () => {
    const p = policy().replace("    runnerVersion: 2.330.0\n", "");
    expect(issuesOf(p)).toEqual([{ path: "pools.linux.runnerVersion", message: "systemd pools need a runnerVersion, e.g. 2.330.0 or latest" }]);
    const q = policy().replace(`    image: ghcr.io/acme/runner@sha256:${digest}\n`, "");
    expect(issuesOf(q)[0]!.path).toBe("pools.box.image");
    const r = policy().replace(`image: ghcr.io/acme/runner@sha256:${digest}`, "image: ghcr.io/acme/runner:latest");
    expect(issuesOf(r)[0]).toMatchObject({ path: "pools.box.image", message: expect.stringContaining("pinned by digest") });
  });

  it("takes runnerVersion latest and upgrade settings, with their defaults compiled by resolvePoolUpgrade", () => {
    const p = parsePolicy(policy().replace("runnerVersion: 2.330.0", "runnerVersion: latest\n    upgrade: { maxUnavailable: 3 }"));
    expect(p.pools.linux!.runnerVersion).toBe("latest");
    expect(resolvePoolUpgrade(p.pools.linux!)).toEqual({ maxUnavailable: 3, maxVersionLag: 1 });
    expect(resolvePoolUpgrade(p.pools.box!)).toEqual({ maxUnavailable: 1, maxVersionLag: 1 });
    expect(issuesOf(policy().replace("runnerVersion: 2.330.0", "runnerVersion: newest")).map((i) => i.path)).toEqual(["pools.linux.runnerVersion"]);
    expect(issuesOf(policy().replace("runnerVersion: 2.330.0", "runnerVersion: 2.330.0\n    upgrade: { maxUnavailable: 0 }")).map((i) => i.path)).toEqual([
      "pools.linux.upgrade.maxUnavailable",
    ]);
    expect(issuesOf(policy().replace("runnerVersion: 2.330.0", "runnerVersion: 2.330.0\n    upgrade: { window: always }")).map((i) => i.path)).toEqual([
      "pools.linux.upgrade.window",
    ]);
  });

  it("refuses reserved labels in pools", () => {
    const p = policy().replace("labels: [linux, x64]", "labels: [linux, lk-managed]");
    expect(issuesOf(p)[0]).toMatchObject({ path: "pools.linux.labels[1]", message: expect.stringContaining("reserved") });
  });

  it("validates enrolled keys and map keys", () => {
    const p = policy().replace(`identityKey: "${id1}"`, `identityKey: "${seal1.slice(0, 10)}"`);
    expect(issuesOf(p)[0]!.path).toBe("hosts.build01.enrolled.identityKey");
    const dup = policy().replace(`sealingKey: "${seal2}"`, `sealingKey: "${seal2}"`).replace(id2.trim().split("\n")[1]!, id1);
    expect(issuesOf(dup).length).toBeGreaterThan(0);
    const badHost = policy().replace("  build02:\n", "  Build_02:\n");
    expect(issuesOf(badHost)[0]).toMatchObject({ path: "hosts.Build_02", message: expect.stringContaining("invalid key") });
    const group = policy().replace("acme/api: { optIn: true }", "acme/api: { optIn: true, runnerGroup: x }");
    expect(issuesOf(group)[0]!.path).toBe('scopes["acme/api"].runnerGroup');
  });

  it("refuses unknown keys everywhere", () => {
    expect(issuesOf(policy().replace("optIn: true\n    capacity: 4", "optin: true\n    capacity: 4"))[0]).toEqual({
      path: "hosts.build01.optin",
      message: "unknown key; remove it or fix its spelling",
    });
    expect(issuesOf(`${policy()}extra: true\n`)[0]!.path).toBe("extra");
  });
});

describe("parsePolicy: coordinator.webhook and coordinator.demand", () => {
  const withCoordinator = (block: string): string => policy().replace("  natsUrl: nats://127.0.0.1:4222\n", `  natsUrl: nats://127.0.0.1:4222\n${block}`);

  it("are optional; the webhook block fills its defaults", () => {
    expect(parsePolicy(policy()).coordinator.webhook).toBeUndefined();
    const p = parsePolicy(withCoordinator("  webhook: { listen: \"127.0.0.1:8787\", secretEnv: LANEKEEPER_WEBHOOK_SECRET }\n  demand: { restIntervalMs: 10000 }\n"));
    expect(p.coordinator.webhook).toEqual({ listen: "127.0.0.1:8787", path: "/github/webhook", secretEnv: "LANEKEEPER_WEBHOOK_SECRET", maxBodyBytes: 1_048_576 });
    expect(p.coordinator.demand).toEqual({ restIntervalMs: 10_000 });
    expect(parsePolicy(withCoordinator("  webhook: { listen: \"[::1]:0\", path: /hooks/gh, secretEnv: S, maxBodyBytes: 2048 }\n")).coordinator.webhook?.listen).toBe("[::1]:0");
  });

  it("refuses bad values with path: message", () => {
    const paths = (block: string): string[] => issuesOf(withCoordinator(block)).map((i) => i.path);
    expect(paths("  webhook: { listen: \"8787\", secretEnv: S }\n")).toEqual(["coordinator.webhook.listen"]);
    expect(paths("  webhook: { listen: \"0.0.0.0:70000\", secretEnv: S }\n")).toEqual(["coordinator.webhook.listen"]);
    expect(paths("  webhook: { listen: \"0.0.0.0:1\", path: \"github/webhook\", secretEnv: S }\n")).toEqual(["coordinator.webhook.path"]);
    expect(paths("  webhook: { listen: \"0.0.0.0:1\", secretEnv: \"my secret\" }\n")).toEqual(["coordinator.webhook.secretEnv"]);
    expect(paths("  webhook: { listen: \"0.0.0.0:1\", secretEnv: S, maxBodyBytes: 100000000 }\n")).toEqual(["coordinator.webhook.maxBodyBytes"]);
    expect(paths("  webhook: { listen: \"0.0.0.0:1\", secretEnv: S, secret: hunter2 }\n")[0]).toMatch(/^coordinator\.webhook/);
    expect(paths("  demand: { restIntervalMs: 10 }\n")).toEqual(["coordinator.demand.restIntervalMs"]);
  });
});
