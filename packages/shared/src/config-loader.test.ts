import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "./agent-config.js";
import { formatConfigPath, parseYamlDocument } from "./config-loader.js";
import { parseConfigPath } from "./config-place.js";
import { ConfigError } from "./errors.js";
import { parsePolicy } from "./policy.js";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const AGENT = "/etc/lanekeeper/agent.yaml";
const POLICY = "/srv/ops/lanekeeper.yaml";

describe("config errors name the file and the place", () => {
  it("reports tab indentation once, at the first tab, naming every line that has one", () => {
    const e = configError(() => parseAgentConfig("hostId: a\nnats:\n\turl: nats://x\ncontrol:\n\tenabled: true\n\tscopes: [acme/api]\n", AGENT));
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ line: 3, column: 1 });
    expect(e.file).toBe(AGENT);
    expect(e.message).toContain(`${AGENT}:3:1: a tab is used for indentation (YAML allows spaces only) on lines 3, 5, 6; indent with spaces`);
    expect(e.message.split("\n")).toHaveLength(2);
  });

  it("reports the first syntax error with its line and column, not its cascade", () => {
    const e = configError(() => parseAgentConfig("hostId: a\nnats:\n  url: nats://x\n  - stray\n  user: u\n", AGENT));
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]?.line).toBe(4);
    expect(e.message).toMatch(new RegExp(`${AGENT}:4:\\d+: `));
  });

  it("places duplicate and forbidden keys", () => {
    const dup = configError(() => parseAgentConfig("hostId: a\nnats: { url: 'nats://x' }\nhostId: b\n", AGENT));
    expect(dup.issues).toEqual([{ path: "hostId", message: "duplicate key; keep only one", line: 3, column: 1 }]);
    expect(dup.message).toContain(`${AGENT}:3:1: hostId: duplicate key; keep only one`);
    const proto = configError(() => parseYamlDocument("a:\n  __proto__: 1\n", "policy", POLICY));
    expect(proto.message).toContain(`${POLICY}:2:3: a.__proto__: the key "__proto__" is not allowed`);
  });

  it("places a second YAML document", () => {
    const e = configError(() => parseYamlDocument("a: 1\n---\nb: 2\n", "policy", POLICY));
    expect(e.issues[0]).toMatchObject({ line: 2 });
    expect(e.message).toContain(`${POLICY}:2:`);
  });

  it("names the file in schema and cross-field errors of the agent config and the policy", () => {
    const unknown = configError(() => parseAgentConfig("hostId: a\nnats: { url: 'nats://x' }\nbogus: 1\n", AGENT));
    expect(unknown.message).toBe(`agent config ${AGENT} is invalid:\n  ${AGENT}:3:1: bogus: unknown key; remove it or fix its spelling`);
    const policy = configError(() => parsePolicy("github: {}\n", POLICY));
    expect(policy.file).toBe(POLICY);
    expect(policy.message.split("\n")[0]).toBe(`policy ${POLICY} is invalid:`);
  });

  it("keeps the old wording when no file is named", () => {
    const e = configError(() => parseAgentConfig("hostId: a\nhostId: b\nnats: { url: 'nats://x' }\n"));
    expect(e.message).toBe("agent config is invalid:\n  line:2:1: hostId: duplicate key; keep only one");
    expect(configError(() => parseAgentConfig("")).message).toBe("agent config is invalid:\n  (document): is empty");
  });

  it("places schema errors of the agent config at the offending node", () => {
    const e = configError(() =>
      parseAgentConfig("hostId: build01\nnats:\n  url: nats://x\n  bogus: 1\ncontrol:\n  enabled: yes\n  scopes:\n    - acme/api\n    - Not A Scope\n", AGENT),
    );
    expect(e.issues).toEqual([
      { path: "nats.bogus", message: "unknown key; remove it or fix its spelling", line: 4, column: 3 },
      { path: "control.enabled", message: expect.stringContaining("boolean"), line: 6, column: 3 },
      { path: "control.scopes[1]", message: expect.any(String), line: 9, column: 7 },
    ]);
    expect(e.message).toContain(`${AGENT}:4:3: nats.bogus: unknown key`);
  });

  it("places a missing key at its parent, and a flow mapping's keys on their column", () => {
    const missing = configError(() => parseAgentConfig("hostId: build01\nstateDir: /var/lib/lk\nnats:\n  user: u\n", AGENT));
    expect(missing.issues).toEqual([{ path: "nats.url", message: expect.any(String), line: 3, column: 1 }]);
    const flow = configError(() => parseAgentConfig("hostId: build01\nnats: { url: 'http://x' }\n", AGENT));
    expect(flow.issues[0]).toMatchObject({ path: "nats.url", line: 2, column: 9 });
  });

  it("places schema and cross-field errors of the policy, scope keys with a slash included", () => {
    const schema = configError(() => parsePolicy("github: {}\ncoordinator: {}\nscopes:\n  acme/api:\n    optIn: maybe\npoolz: {}\n", POLICY));
    expect(schema.issues).toContainEqual({ path: 'scopes["acme/api"].optIn', message: expect.any(String), line: 5, column: 5 });
    expect(schema.issues).toContainEqual({ path: "poolz", message: "unknown key; remove it or fix its spelling", line: 6, column: 1 });
    expect(schema.message).toContain(`${POLICY}:6:1: poolz: unknown key`);
    const cross = configError(() =>
      parsePolicy(
        "github:\n  auth: { tokenEnv: GH }\ncoordinator:\n  keyFile: /k\n  natsUrl: nats://x\nhosts: {}\nscopes:\n  acme/api: { optIn: true }\n" +
          "pools:\n  p:\n    backend: systemd\n    mode: persistent\n    runnerVersion: 2.320.0\n    labels: [linux]\n" +
          "lanes:\n  - scope: acme/api\n    pool: p\n    count: 1\n    hosts: [h1]\n",
        POLICY,
      ),
    );
    expect(cross.issues[0]).toMatchObject({ path: "lanes[0].hosts[0]", line: 19, column: 13 });
    expect(cross.message).toContain(`${POLICY}:19:13: lanes[0].hosts[0]: host "h1" is not enrolled`);
  });
});

describe("parseConfigPath reads what formatConfigPath writes", () => {
  it("round-trips keys, indexes and quoted keys", () => {
    for (const path of [[], ["a"], ["a", "b", 0, "c-d_e"], ["scopes", "acme/api", "optIn"], ["x", 'a "q" \\ b', 3]]) {
      expect(parseConfigPath(formatConfigPath(path))).toEqual(path);
    }
    expect(parseConfigPath(".a")).toBeUndefined();
    expect(parseConfigPath("a b")).toBeUndefined();
    expect(parseConfigPath("a[x]")).toBeUndefined();
  });
});
