import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "./agent-config.js";
import { ConfigError } from "./errors.js";

const minimal = "hostId: build01\nnats:\n  url: nats://127.0.0.1:4222\n";

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parseAgentConfig(text);
  } catch (err) {
    // These tests are about the rules; config-loader.test.ts checks where each issue is placed.
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => ({ path, message }));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("parseAgentConfig", () => {
  it("applies documented defaults and fails closed", () => {
    const c = parseAgentConfig(minimal);
    expect(c.hostId).toBe("build01");
    expect(c.unitDir).toBe("/etc/systemd/system");
    expect(c.trustFile).toBe("/etc/lanekeeper/trust.json");
    expect(c.health).toEqual({ intervalMs: 1000, maxRestarts: 5, windowMs: 600_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 });
    expect(c.control).toEqual({ enabled: false, scopes: [], pools: [], backends: [], actions: [], images: [], maxLanes: 0 });
    expect(c.runnerRoots).toEqual([]);
    expect(c.logLevel).toBe("info");
  });

  it("pins lanes to https://github.com by default; plain http only through the explicitly insecure list", () => {
    expect(parseAgentConfig(minimal).github).toEqual({ origins: ["https://github.com"], allowInsecureHttpOrigins: [] });
    const ghes = parseAgentConfig(`${minimal}github:\n  origins: [https://ghes.example.com, "https://ghes2.example.com:8443"]\n`);
    expect(ghes.github.origins).toEqual(["https://ghes.example.com", "https://ghes2.example.com:8443"]);
    const local = parseAgentConfig(`${minimal}github:\n  allowInsecureHttpOrigins: ["http://127.0.0.1:4000"]\n`);
    expect(local.github).toEqual({ origins: ["https://github.com"], allowInsecureHttpOrigins: ["http://127.0.0.1:4000"] });
    const bad: [string, string, RegExp][] = [
      ["origins: [http://github.com]", "github.origins[0]", /https:\/\/ origin.*allowInsecureHttpOrigins/],
      ["origins: [https://github.com/]", "github.origins[0]", /exactly as the origin https:\/\/github\.com/],
      ["origins: [https://github.com/acme]", "github.origins[0]", /no path/],
      ["origins: [https://u:p@github.com]", "github.origins[0]", /credentials/],
      ["origins: [https://GitHub.com]", "github.origins[0]", /exactly as the origin https:\/\/github\.com/],
      ["origins: [github.com]", "github.origins[0]", /not a URL/],
      ["allowInsecureHttpOrigins: [https://github.com]", "github.allowInsecureHttpOrigins[0]", /http:\/\/ origin/],
      ["allowInsecureHttpOrigins: [ftp://x.example]", "github.allowInsecureHttpOrigins[0]", /http:\/\/ origin/],
      ["origin: [https://github.com]", "github.origin", /unknown key/],
    ];
    for (const [yaml, path, message] of bad) {
      expect(issuesOf(`${minimal}github:\n  ${yaml}\n`)[0], yaml).toMatchObject({ path, message: expect.stringMatching(message) });
    }
  });

  it("has the health interval and the container network mode in the config, with documented defaults", () => {
    const c = parseAgentConfig(minimal);
    expect(c.health.intervalMs).toBe(1000);
    expect(c.container).toEqual({ network: "host" });
    const set = parseAgentConfig(`${minimal}health: { intervalMs: 200 }\ncontainer: { network: lk-lanes }\n`);
    expect(set.health.intervalMs).toBe(200);
    expect(set.health.maxRestarts).toBe(5);
    expect(set.container.network).toBe("lk-lanes");
    expect(parseAgentConfig(`${minimal}container: { network: bridge }\n`).container.network).toBe("bridge");
    expect(issuesOf(`${minimal}health: { intervalMs: 10 }\n`)[0]!.path).toBe("health.intervalMs");
    // Joining another container's namespaces is not a lane's network.
    expect(issuesOf(`${minimal}container: { network: "container:abc" }\n`)[0]!.path).toBe("container.network");
    expect(issuesOf(`${minimal}container: { network: "" }\n`)[0]!.path).toBe("container.network");
    expect(issuesOf(`${minimal}container: { netwrok: host }\n`)[0]!.path).toBe("container.netwrok");
  });

  it("bounds maxLanes and the allowlist so the inventory can always report them", () => {
    expect(parseAgentConfig(`${minimal}control: { maxLanes: 256 }\n`).control.maxLanes).toBe(256);
    expect(issuesOf(`${minimal}control: { maxLanes: 257 }\n`)[0]!.path).toBe("control.maxLanes");
    const scopes = Array.from({ length: 33 }, (_, i) => `acme/r${i}`).join(", ");
    expect(issuesOf(`${minimal}control: { scopes: [${scopes}] }\n`)[0]!.path).toBe("control.scopes");
  });

  it("takes one NATS server (nats.url) or a cluster (nats.servers), never both", () => {
    expect(parseAgentConfig(minimal).nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    const c = parseAgentConfig("hostId: build01\nnats: { servers: [nats://a:4222, nats://b:4222] }\n");
    expect(c.nats.servers).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(c.nats.url).toBe("nats://a:4222");
    expect(issuesOf("hostId: build01\nnats: { url: nats://a, servers: [nats://b] }\n")).toEqual([
      { path: "nats.servers", message: "give url (one server) or servers (a cluster), exactly one of them" },
    ]);
    expect(issuesOf("hostId: build01\nnats: { user: u, password: p }\n")[0]!.path).toBe("nats.url");
  });

  it("gives each installation its own default status socket, named for its host id", () => {
    expect(parseAgentConfig(minimal).statusSocket).toBe("/run/lanekeeper/build01/agent.sock");
    expect(parseAgentConfig("hostId: build02\nnats: { url: 'nats://x' }\n").statusSocket).toBe("/run/lanekeeper/build02/agent.sock");
    expect(parseAgentConfig(`${minimal}statusSocket: /run/lk/agent.sock\n`).statusSocket).toBe("/run/lk/agent.sock");
  });

  it("puts the default lane root beside the 0700 state directory, never inside it", () => {
    expect(parseAgentConfig(minimal).laneRoot).toBe("/var/lib/lanekeeper-lanes");
    expect(parseAgentConfig(`${minimal}stateDir: /srv/lk/state/\n`).laneRoot).toBe("/srv/lk/state-lanes");
    expect(parseAgentConfig(`${minimal}stateDir: /srv/lk\nlaneRoot: /data/lanes\n`).laneRoot).toBe("/data/lanes");
    expect(issuesOf(`${minimal}stateDir: /\n`)[0]!.path).toBe("stateDir");
  });

  it("returns a deeply frozen object", () => {
    const c = parseAgentConfig(`${minimal}control:\n  enabled: true\n  scopes: [acme/api]\n`);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.control)).toBe(true);
    expect(Object.isFrozen(c.control.scopes)).toBe(true);
    expect(() => (c.control.scopes).push("x")).toThrow(TypeError);
  });

  it("accepts a full config", () => {
    const d = "a".repeat(64);
    const c = parseAgentConfig(`
hostId: build01
nats: { url: "tls://nats.example:4222", credsFile: /etc/lanekeeper/agent.creds }
stateDir: /var/lib/lk
runnerRoots: [/opt/runners, /home/ci]
health: { maxRestarts: 3 }
control:
  enabled: true
  scopes: [acme/api, "org:acme"]
  pools: [linux-x64]
  backends: [systemd, container]
  actions: [create, drain, restart, remove]
  images: ["ghcr.io/acme/runner@sha256:${d}"]
  maxLanes: 4
`);
    expect(c.control.actions).toEqual(["create", "drain", "restart", "remove"]);
    expect(c.health.maxRestarts).toBe(3);
    expect(c.health.windowMs).toBe(600_000);
  });

  it("reports unknown keys with their paths", () => {
    expect(issuesOf(`${minimal}control:\n  enabeld: true\n`)).toEqual([
      { path: "control.enabeld", message: "unknown key; remove it or fix its spelling" },
    ]);
    expect(issuesOf(`${minimal}extra: 1\n`)[0]!.path).toBe("extra");
  });

  it("names the offending list item", () => {
    const issues = issuesOf(`${minimal}control:\n  scopes: [acme/api, "acme/a b"]\n`);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("control.scopes[1]");
    expect(issues[0]!.message).toContain("repository name");
    expect(issuesOf(`${minimal}control:\n  scopes: [acme/api, acme/api]\n`)[0]).toEqual({
      path: "control.scopes[1]",
      message: "scope listed twice",
    });
    expect(issuesOf(`${minimal}control:\n  images: ["ubuntu:latest"]\n  backends: [container]\n`)[0]!.path).toBe("control.images[0]");
    expect(issuesOf(`${minimal}control:\n  actions: [reboot]\n`)[0]!.path).toBe("control.actions[0]");
  });

  it("lists every issue in the message as path: message lines", () => {
    try {
      parseAgentConfig("hostId: Build01\nnats: { url: 'http://x' }\nstateDir: relative\n");
      expect.unreachable();
    } catch (err) {
      const e = err as ConfigError;
      expect(e.code).toBe("CONFIG_INVALID");
      expect(e.issues.map((i) => i.path).sort()).toEqual(["hostId", "nats.url", "stateDir"]);
      expect(e.message).toMatch(/^agent config is invalid:\n/);
      expect(e.message).toContain("  line:3:1: stateDir: must be an absolute path");
      expect(e.message).toContain("  line:2:9: nats.url: must use nats or tls or ws or wss");
    }
  });

  it("refuses paths with traversal and NATS URLs with credentials", () => {
    expect(issuesOf(`${minimal}laneRoot: /var/lib/../../etc\n`)[0]!.path).toBe("laneRoot");
    expect(issuesOf("hostId: build01\nnats: { url: 'nats://u:p@h:4222' }\n")[0]!.message).toContain("credentials");
  });

  it("applies cross-field rules", () => {
    expect(issuesOf("hostId: h\nnats: { url: 'nats://h', user: u }\n")).toEqual([{ path: "nats.password", message: "user and password go together" }]);
    expect(issuesOf("hostId: h\nnats: { url: 'nats://h', user: u, password: p, credsFile: /x }\n")[0]!.path).toBe("nats.credsFile");
    expect(issuesOf(`${minimal}health: { backoffBaseMs: 5000, backoffMaxMs: 1000 }\n`)[0]!.path).toBe("health.backoffBaseMs");
    expect(issuesOf(`${minimal}runnerRoots: [/var/lib/lanekeeper]\n`)[0]!.path).toBe("runnerRoots[0]");
    const d = "a".repeat(64);
    expect(issuesOf(`${minimal}control: { images: ["r@sha256:${d}"] }\n`)[0]!.path).toBe("control.images");
  });

  it("refuses YAML-level problems", () => {
    expect(issuesOf(`${minimal}hostId: other\n`)[0]).toMatchObject({ path: "hostId", message: expect.stringContaining("duplicate key") });
    expect(issuesOf(`\uFEFF${minimal}`)[0]!.message).toContain("byte-order mark");
    expect(issuesOf(`${minimal}---\nhostId: x\n`)[0]!.message).toContain("2 YAML documents");
    expect(issuesOf(`${minimal}}}}\n`).length).toBeGreaterThan(0);
    expect(issuesOf("")[0]!.message).toBe("is empty");
    expect(issuesOf("# nothing\n")[0]!.message).toBe("is empty");
    expect(issuesOf("- a\n- b\n")[0]!.message).toMatch(/expected object/);
    expect(issuesOf(`${minimal}__proto__: { polluted: true }\n`)[0]).toMatchObject({ path: "__proto__", message: expect.stringContaining("not allowed") });
    expect(issuesOf(`${minimal}control:\n  constructor: {}\n`)[0]).toMatchObject({ path: "control.constructor" });
    expect(issuesOf(`${minimal}runAsUser: !custom root\n`).length).toBeGreaterThan(0);
    expect(issuesOf(`${minimal}stateDir: /x\0\n`)[0]!.message).toContain("NUL");
  });
});
