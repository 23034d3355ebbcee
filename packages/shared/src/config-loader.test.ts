import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "./agent-config.js";
import { parseYamlDocument } from "./config-loader.js";
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
    expect(unknown.message).toBe(`agent config ${AGENT} is invalid:\n  bogus: unknown key; remove it or fix its spelling`);
    const policy = configError(() => parsePolicy("github: {}\n", POLICY));
    expect(policy.file).toBe(POLICY);
    expect(policy.message.split("\n")[0]).toBe(`policy ${POLICY} is invalid:`);
  });

  it("keeps the old wording when no file is named", () => {
    const e = configError(() => parseAgentConfig("hostId: a\nhostId: b\nnats: { url: 'nats://x' }\n"));
    expect(e.message).toBe("agent config is invalid:\n  line:2:1: hostId: duplicate key; keep only one");
    expect(configError(() => parseAgentConfig("")).message).toBe("agent config is invalid:\n  (document): is empty");
  });
});
