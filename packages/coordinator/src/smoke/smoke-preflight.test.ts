import { describe, expect, it } from "vitest";
import type { Allowlist, Policy } from "@lanekeeper/shared";
import { hostInventory, hostPolicy, makePolicy } from "@lanekeeper/testing";
import { checkAgentSide, checkPolicySide, policyScope } from "./smoke-preflight.js";

const policy: Policy = makePolicy({
  hosts: { h1: hostPolicy(1, true, 2), h2: hostPolicy(2, false, 2) },
  scopes: { "acme/sandbox": { optIn: true }, "acme/closed": { optIn: false }, "org:acme": { optIn: true } },
  pools: {
    "linux-x64": { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" },
    boxes: { labels: ["box"], backend: "container", mode: "persistent", image: `r@sha256:${"a".repeat(64)}` },
  },
  lanes: [],
});
const allow = (p: Partial<Allowlist> = {}): Allowlist => ({
  scopes: ["acme/sandbox"],
  pools: ["linux-x64"],
  backends: ["systemd"],
  actions: ["create", "drain", "undrain", "restart", "remove"],
  images: [],
  maxLanes: 8,
  ...p,
});
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe("smoke preflight: opt-in on both sides, before anything changes", () => {
  it("maps --scope to the policy scope", () => {
    expect(policyScope("repo:acme/sandbox")).toBe("acme/sandbox");
    expect(policyScope("org:acme")).toBe("org:acme");
    expect(codeOf(() => policyScope("repo:not a scope"))).toBe("SMOKE_OPTIONS_INVALID");
  });

  it("refuses a scope or host the policy does not opt in, and names the key to set", () => {
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/closed", hostId: "h1" }))).toBe("SMOKE_SCOPE_NOT_OPTED_IN");
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/unknown", hostId: "h1" }))).toBe("SMOKE_SCOPE_NOT_OPTED_IN");
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/sandbox", hostId: "h2" }))).toBe("SMOKE_HOST_NOT_OPTED_IN");
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/sandbox", hostId: "h9" }))).toBe("SMOKE_HOST_NOT_OPTED_IN");
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "org:acme", hostId: "h1", workflow: "s.yml", ref: "main" }))).toBe("SMOKE_OPTIONS_INVALID");
    expect(codeOf(() => checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/sandbox", hostId: "h1", workflow: "s.yml" }))).toBe("SMOKE_OPTIONS_INVALID");
    expect(checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/sandbox", hostId: "h1", runtime: "container" }).pools).toEqual(["boxes"]);
  });

  it("refuses what the agent's allowlist does not take, a disabled control, a full host; else picks the first pool it allows", () => {
    const side = checkPolicySide(policy, "/p.yaml", { scope: "repo:acme/sandbox", hostId: "h1" });
    const inv = (p: Parameters<typeof hostInventory>[3]) => hostInventory("h1", 1, [], p);
    expect(codeOf(() => checkAgentSide(policy, inv({ controlEnabled: false, allowlist: allow() }), side))).toBe("SMOKE_HOST_NOT_ALLOWED");
    expect(codeOf(() => checkAgentSide(policy, inv({ allowlist: allow({ scopes: [] }) }), side))).toBe("SMOKE_HOST_NOT_ALLOWED");
    expect(codeOf(() => checkAgentSide(policy, inv({ allowlist: allow({ actions: ["create", "drain", "remove"] }) }), side))).toBe("SMOKE_HOST_NOT_ALLOWED");
    const full = hostInventory("h1", 1, [{ laneId: "a" }, { laneId: "b" }] as never, { allowlist: allow() });
    expect(codeOf(() => checkAgentSide(policy, full, side))).toBe("SMOKE_HOST_FULL");
    expect(checkAgentSide(policy, inv({ allowlist: allow() }), side)).toMatchObject({ scope: "acme/sandbox", pool: "linux-x64", maxLanes: 2 });
  });
});
