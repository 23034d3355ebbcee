import { describe, expect, it } from "vitest";
import { parseCliArgs } from "./cli.js";
import { resolveEmulatorOptions } from "./options.js";

describe("resolveEmulatorOptions", () => {
  it("applies documented defaults", () => {
    const o = resolveEmulatorOptions({ token: "T" });
    expect(o).toMatchObject({ port: 0, host: "127.0.0.1", offlineAfterMs: 3000, tokenTtlMs: 3600_000, rateLimitPerHour: 5000, repos: [], orgs: [] });
    expect(Object.isFrozen(o)).toBe(true);
    expect(resolveEmulatorOptions().token).toMatch(/^lk_[0-9a-f]{40}$/);
  });

  it("rejects bad values with path: message and code OPTIONS_INVALID", () => {
    expect(() => resolveEmulatorOptions({ repos: ["acme"] })).toThrow(/^repos\[0\]: expected owner\/name/);
    expect(() => resolveEmulatorOptions({ orgs: ["a/b"] })).toThrow(/^orgs\[0\]: /);
    expect(() => resolveEmulatorOptions({ port: 70000 })).toThrow(/^port: /);
    expect(() => resolveEmulatorOptions({ offlineAfterMs: 0 })).toThrow(/^offlineAfterMs: /);
    expect(() => resolveEmulatorOptions({ webhookSecret: "s" })).toThrow(/^webhookSecret: given without webhookUrl/);
    expect(() => resolveEmulatorOptions({ token: "T", tokens: [{ name: "x", token: "T", access: "read" }] })).toThrow(/duplicates the admin token/);
    const thrown = (() => {
      try {
        resolveEmulatorOptions({ port: -1 });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(thrown).toMatchObject({ name: "GitHubEmulatorError", code: "OPTIONS_INVALID" });
  });
});

describe("parseCliArgs", () => {
  it("maps flags to options, with repeatable --repo/--org", () => {
    expect(parseCliArgs(["--port", "0", "--token", "T", "--repo", "a/b", "--repo", "c/d", "--org", "a", "--offline-after-ms", "500", "--rate-limit", "10"])).toEqual({
      token: "T",
      repos: ["a/b", "c/d"],
      orgs: ["a"],
      port: 0,
      offlineAfterMs: 500,
      rateLimitPerHour: 10,
    });
    expect(parseCliArgs(["--help"])).toBe("help");
    expect(() => parseCliArgs(["--token", "T", "--port", "x"])).toThrow(/--port: expected a non-negative integer/);
    expect(() => parseCliArgs(["--token", "T", "--bogus"])).toThrow(/bogus/);
  });
});

describe("realism options", () => {
  it("is fault-free unless asked; --realism on/off/JSON on the command line", () => {
    expect(resolveEmulatorOptions({ token: "T" }).realism).toMatchObject({ busyStartLagMs: 0, webhookDropRate: 0, onlineLagMs: 0 });
    expect(resolveEmulatorOptions({ token: "T", realism: true }).realism.webhookDropRate).toBe(0.05);
    expect(parseCliArgs(["--token", "T", "--realism", "on"])).toMatchObject({ realism: { busyStartLagMs: 2000, webhookDropRate: 0.05 } });
    expect(parseCliArgs(["--token", "T", "--realism", "off"])).toMatchObject({ realism: { busyStartLagMs: 0, webhookDropRate: 0 } });
    expect(parseCliArgs(["--token", "T", "--realism", '{"webhookDropRate":0.2}'])).toMatchObject({ realism: { webhookDropRate: 0.2, busyStartLagMs: 2000 } });
    expect(() => parseCliArgs(["--token", "T", "--realism", "maybe"])).toThrow(/--realism: expected on, off or a JSON object/);
    expect(() => resolveEmulatorOptions({ realism: { webhookDelayRate: -1 } })).toThrow(/^realism\.webhookDelayRate: /);
  });
});
