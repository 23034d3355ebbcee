// Prototype pollution (grpc-js test-prototype-pollution.ts, security-cases.md group 8): no input lanekeeper
// parses (YAML config, policy, trust file JSON, audit details, protobuf payloads) may write to Object.prototype
// or smuggle a prototype into a parsed value.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  AuditLog,
  canonicalJson,
  ConfigError,
  generateSealingKey,
  generateSigningKey,
  parseAgentConfig,
  parsePolicy,
  parseTrustFile,
  redactSecrets,
  verifyAuditChain,
} from "@lanekeeper/shared";

const dir = mkdtempSync(join(tmpdir(), "lk-proto-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function assertClean(): void {
  const probe: Record<string, unknown> = {};
  expect(probe.polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).enabled).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty("polluted");
  expect(Object.prototype).not.toHaveProperty("enabled");
}
afterEach(assertClean);

const agent = "hostId: build01\nnats:\n  url: nats://127.0.0.1:4222\n";
const policyBase = "github:\n  auth: { tokenEnv: GITHUB_TOKEN }\ncoordinator:\n  keyFile: /etc/lk/key\n  natsUrl: nats://127.0.0.1:4222\n";

function configPaths(parse: (t: string) => unknown, text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.path);
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("prototype pollution", () => {
  it.each([
    ["__proto__ at the top", "__proto__:\n  polluted: true\n", "__proto__"],
    ["__proto__ in control", "control:\n  __proto__: { enabled: true }\n", "control.__proto__"],
    ["constructor.prototype", "constructor:\n  prototype: { polluted: true }\n", "constructor"],
    ["quoted __proto__", '"__proto__": { polluted: true }\n', "__proto__"],
    ["flow-map __proto__", "health: { __proto__: { polluted: true } }\n", "health.__proto__"],
    ["merge key carrying __proto__", "health:\n  <<: { __proto__: { polluted: true } }\n", "health.<<.__proto__"],
  ])("agent config: %s is refused", (_name, yaml, path) => {
    const paths = configPaths(parseAgentConfig, agent + yaml);
    expect(paths[0]).toBe(path.includes("<<") ? 'health["<<"].__proto__' : path);
  });

  it("agent config: an anchor aliased into a __proto__ key is refused", () => {
    const paths = configPaths(parseAgentConfig, `${agent}x: &p { polluted: true }\ncontrol:\n  __proto__: *p\n`);
    expect(paths).toContain("control.__proto__");
  });

  it("policy: __proto__ and constructor as map keys are refused", () => {
    expect(configPaths(parsePolicy, `${policyBase}hosts:\n  __proto__: { polluted: true }\n`)).toEqual(["hosts.__proto__"]);
    expect(configPaths(parsePolicy, `${policyBase}scopes:\n  constructor: { optIn: true }\n`)).toEqual(["scopes.constructor"]);
    expect(configPaths(parsePolicy, `${policyBase}pools:\n  prototype: { backend: systemd }\n`)).toEqual(["pools.prototype"]);
  });

  it("policy: inherited names are never taken for declared hosts, scopes or pools", () => {
    // "constructor" is a valid host id and pool name; {}.constructor exists on every object. A lane naming it
    // must not find Object's constructor as an enrolled, opted-in host.
    const k = generateSigningKey().publicKey.toString("base64");
    const s = generateSealingKey().publicKey.toString("base64");
    const text = `${policyBase}hosts:\n  h1: { enrolled: { identityKey: "${k}", sealingKey: "${s}" }, optIn: true, capacity: 1 }\nscopes:\n  acme/api: { optIn: true }\nlanes:\n  - { scope: acme/api, pool: constructor, count: 1, hosts: [constructor, tostring] }\n`;
    expect(configPaths(parsePolicy, text)).toEqual(["lanes[0].pool", "lanes[0].hosts[0]", "lanes[0].hosts[1]", "lanes[0].count"]);
  });

  it("trust file: __proto__ and constructor keys are refused", () => {
    for (const json of ['{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"polluted": true}}}', '{"keys": [{"__proto__": {"polluted": true}}]}']) {
      expect(() => parseTrustFile(json)).toThrow(ConfigError);
    }
  });

  it("audit: an own __proto__ key in details stays data and cannot change the record's prototype", async () => {
    const details = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>;
    expect(Object.keys(details)).toContain("__proto__");
    const redacted = redactSecrets(details);
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype);
    expect(Object.keys(redacted)).toEqual(["__proto__", "ok"]);
    expect((redacted as { polluted?: unknown }).polluted).toBeUndefined();

    const path = join(dir, "audit.jsonl");
    const log = await AuditLog.open(path);
    const record = await log.append({ source: "s", action: "a", phase: "planned", details });
    await log.close();
    expect(canonicalJson(record.details)).toBe('{"__proto__":{"polluted":true},"ok":1}');
    const text = readFileSync(path, "utf8");
    expect(verifyAuditChain(text)).toMatchObject({ ok: true, count: 1 });
    const back = JSON.parse(text.trim()) as { details: Record<string, unknown> };
    expect((back.details as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("parsed configs are plain frozen data", () => {
    const c = parseAgentConfig(agent);
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as unknown as Record<string, unknown>).hostId = "x";
    }).toThrow(TypeError);
  });
});
